#include "tests/executor/create_bodies.h"

#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "nlohmann/json.hpp"

namespace testing_util {
namespace {

using nlohmann::json;
using Path = std::vector<std::string>;

// One change to a body, at the key `path` (array elements are "#i").
struct Edit {
  enum Kind { kNone, kRename, kDuplicate, kRemove, kReplace } kind = kNone;
  Path path;
  std::string text;  // kRename: the raw key token; kReplace: the raw value
};

// Serializes `j` as the engine client does, but with `edit` applied to the
// raw text, so that duplicates and escaped keys can be written at all.
std::string Render(const json& j, const Path& at, const Edit& edit) {
  if (j.is_object()) {
    std::vector<std::string> members;
    for (auto it = j.begin(); it != j.end(); ++it) {
      Path p = at;
      p.push_back(it.key());
      const std::string key = json(it.key()).dump();
      const std::string value = Render(it.value(), p, edit);
      if (p != edit.path) {
        members.push_back(absl::StrCat(key, ":", value));
        continue;
      }
      switch (edit.kind) {
        case Edit::kRemove:
          break;
        case Edit::kRename:
          members.push_back(absl::StrCat(edit.text, ":", value));
          break;
        case Edit::kDuplicate:
          members.push_back(absl::StrCat(key, ":", value));
          members.push_back(absl::StrCat(key, ":", value));
          break;
        case Edit::kReplace:
          members.push_back(absl::StrCat(key, ":", edit.text));
          break;
        case Edit::kNone:
          members.push_back(absl::StrCat(key, ":", value));
          break;
      }
    }
    return absl::StrCat("{", absl::StrJoin(members, ","), "}");
  }
  if (j.is_array()) {
    std::vector<std::string> items;
    for (size_t i = 0; i < j.size(); ++i) {
      Path p = at;
      p.push_back(absl::StrCat("#", i));
      items.push_back(Render(j[i], p, edit));
    }
    return absl::StrCat("[", absl::StrJoin(items, ","), "]");
  }
  return j.dump();
}

// Every key path of `j`: objects' keys, through arrays' elements.
void KeyPaths(const json& j, const Path& at, std::vector<Path>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      Path p = at;
      p.push_back(it.key());
      out.push_back(p);
      KeyPaths(it.value(), p, out);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      Path p = at;
      p.push_back(absl::StrCat("#", i));
      KeyPaths(j[i], p, out);
    }
  }
}

// JSON values, one of each type, for retyping a value.
const std::vector<std::pair<json::value_t, std::string>>& Retypes() {
  static const auto* values =
      new std::vector<std::pair<json::value_t, std::string>>{
          {json::value_t::string, "\"x\""},
          {json::value_t::number_unsigned, "1"},
          {json::value_t::number_float, "1.5"},
          {json::value_t::boolean, "true"},
          {json::value_t::null, "null"},
          {json::value_t::array, "[\"x\"]"},
          {json::value_t::object, "{\"x\":1}"},
      };
  return *values;
}

bool SameKind(json::value_t a, json::value_t b) {
  auto number = [](json::value_t t) {
    return t == json::value_t::number_integer ||
           t == json::value_t::number_unsigned;
  };
  return a == b || (number(a) && number(b));
}

const json& At(const json& j, const Path& path) {
  const json* v = &j;
  for (const std::string& k : path) {
    v = k[0] == '#' ? &(*v)[std::stoul(k.substr(1))] : &(*v)[k];
  }
  return *v;
}

// Fields of the Docker Engine API's container-create body (Config and
// HostConfig, API 1.41-1.45) that no plan has, each with a hostile value.
const std::vector<std::pair<std::string, std::string>>& HostConfigExtras() {
  static const auto* extras = new std::vector<
      std::pair<std::string, std::string>>{
      {"Binds", R"(["/:/host"])"},
      {"ContainerIDFile", R"("/etc/cron.d/x")"},
      {"LogConfig", R"({"Type":"k8s-file","Config":{"path":"/etc/passwd"}})"},
      {"PortBindings", R"({"22/tcp":[{"HostPort":"2222"}]})"},
      {"VolumeDriver", R"("local")"},
      {"VolumesFrom", R"(["other"])"},
      {"Mounts", R"([{"Type":"bind","Source":"/","Target":"/host"}])"},
      {"ConsoleSize", R"([1,1])"},
      {"Annotations", R"({"run.oci.keep_original_groups":"1"})"},
      {"CapAdd", R"(["SYS_ADMIN"])"},
      {"CgroupnsMode", R"("host")"},
      {"Dns", R"(["1.1.1.1"])"},
      {"DnsOptions", R"(["ndots:1"])"},
      {"DnsSearch", R"(["example"])"},
      {"ExtraHosts", R"(["host.docker.internal:host-gateway"])"},
      {"GroupAdd", R"(["0"])"},
      {"IpcMode", R"("host")"},
      {"Cgroup", R"("host")"},
      {"Links", R"(["other:o"])"},
      {"OomScoreAdj", "-1000"},
      {"PidMode", R"("host")"},
      {"PublishAllPorts", "true"},
      {"StorageOpt", R"({"size":"1T"})"},
      {"UTSMode", R"("host")"},
      {"UsernsMode", R"("host")"},
      {"ShmSize", "1099511627776"},
      {"Sysctls", R"({"kernel.core_pattern":"|/tmp/x"})"},
      {"Isolation", R"("hyperv")"},
      {"MaskedPaths", "[]"},
      {"ReadonlyPaths", "[]"},
      {"CpuShares", "262144"},
      {"CgroupParent", R"("..")"},
      {"BlkioWeight", "1000"},
      {"BlkioWeightDevice", R"([{"Path":"/dev/sda","Weight":1000}])"},
      {"BlkioDeviceReadBps", R"([{"Path":"/dev/sda","Rate":1}])"},
      {"BlkioDeviceWriteBps", R"([{"Path":"/dev/sda","Rate":1}])"},
      {"BlkioDeviceReadIOps", R"([{"Path":"/dev/sda","Rate":1}])"},
      {"BlkioDeviceWriteIOps", R"([{"Path":"/dev/sda","Rate":1}])"},
      {"CpuPeriod", "1000"},
      {"CpuQuota", "-1"},
      {"CpuRealtimePeriod", "1000000"},
      {"CpuRealtimeRuntime", "950000"},
      {"CpusetCpus", R"("0-1")"},
      {"CpusetMems", R"("0")"},
      {"Devices",
       R"([{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}])"},
      {"DeviceCgroupRules", R"(["a *:* rwm"])"},
      {"DeviceRequests",
       R"([{"Driver":"nvidia","Count":-1,"Capabilities":[["gpu"]]}])"},
      {"KernelMemory", "0"},
      {"KernelMemoryTCP", "0"},
      {"MemoryReservation", "0"},
      {"MemorySwappiness", "100"},
      {"OomKillDisable", "true"},
      {"Init", "true"},
      {"CpuCount", "64"},
      {"CpuPercent", "100"},
      {"IOMaximumIOps", "0"},
      {"IOMaximumBandwidth", "0"},
      {"Privileged", "true"},
      {"Runtime", R"("runc")"},
      {"NetworkMode", R"("host")"},
  };
  return *extras;
}

const std::vector<std::pair<std::string, std::string>>& ConfigExtras() {
  static const auto* extras =
      new std::vector<std::pair<std::string, std::string>>{
          {"Hostname", R"("x")"},
          {"Domainname", R"("x")"},
          {"ExposedPorts", R"({"22/tcp":{}})"},
          {"StdinOnce", "true"},
          {"Healthcheck", R"({"Test":["CMD","sh","-c","id"]})"},
          {"ArgsEscaped", "true"},
          {"Volumes", R"({"/data":{}})"},
          {"Entrypoint", R"(["/bin/sh","-c"])"},
          {"MacAddress", R"("02:42:ac:11:00:02")"},
          {"OnBuild", R"(["RUN id"])"},
          {"StopSignal", R"("SIGKILL")"},
          {"StopTimeout", "1"},
          {"Shell", R"(["/bin/sh"])"},
          {"NetworkingConfig", R"({"EndpointsConfig":{"host":{}}})"},
          {"Platform", R"("linux/amd64")"},
          {"HostConfig ", "{}"},
      };
  return *extras;
}

}  // namespace

policy::ContainerPolicyOptions GuardTestPolicy(bool named_network) {
  policy::ContainerPolicyOptions o;
  o.executor_id = "guard-test";
  if (named_network) {
    o.network = "crucible-tasks";
    o.runtime = "runc";
  }
  return o;
}

std::vector<CreateRequest> RealCreateRequests(
    const policy::ContainerPolicyOptions& options,
    const std::string& run_prefix) {
  auto policy = policy::ContainerPolicy::Create(options);
  if (!policy.ok()) return {};
  std::vector<CreateRequest> out;
  for (int mask = 0; mask < 32; ++mask) {
    crucible::v1::RunRequest req;
    req.set_run_id(absl::StrFormat("%s%02d", run_prefix, mask));
    req.set_task_id(absl::StrCat("task-", mask));
    req.set_attempt(1 + mask % 3);
    // Most runs carry their task's trace id (the last one does); a run of
    // a task from before trace ids has none.
    if (mask % 3 != 0) req.set_trace_id(absl::StrFormat("%032x", 0xabc + mask));
    crucible::v1::TaskSpec& spec = *req.mutable_spec();
    spec.set_image("localhost/crucible/busybox:latest");
    if (mask & 1) {
      for (const char* arg : {"sh", "-c", "echo \"héllo\" \\ $X; exit 3", ""}) {
        spec.add_command(arg);
      }
    }
    if (mask & 2) {
      (*spec.mutable_env())["X"] = "a=b";
      (*spec.mutable_env())["EMPTY"] = "";
      (*spec.mutable_env())["Privileged"] = "true";
    }
    if (mask & 4) spec.set_working_dir("/tmp");
    if (mask & 8) spec.set_stdin("input\n");
    if (mask & 16) {
      crucible::v1::Resources& r = *spec.mutable_resources();
      r.set_memory_bytes(options.max_memory_bytes);
      r.set_cpu_millis(options.max_cpu_millis);
      r.set_pids_limit(options.max_pids_limit);
      r.set_tmpfs_bytes(options.max_tmpfs_bytes);
      *spec.mutable_timeout() = common::ToProtoDuration(options.max_timeout);
    }
    absl::StatusOr<policy::ContainerPlan> plan = policy->Plan(req);
    if (!plan.ok()) return {};
    out.push_back({absl::StrCat("real body #", mask),
                   absl::StrCat("name=", plan->name),
                   plan->create_body.dump()});
  }
  return out;
}

std::vector<CreateRequest> HostileCreateRequests(const CreateRequest& base) {
  const json body = json::parse(base.body);
  std::vector<CreateRequest> out;
  auto add = [&](std::string what, const Edit& edit) {
    out.push_back({std::move(what), base.query, Render(body, {}, edit)});
  };
  auto with = [&](std::string what, const std::function<void(json&)>& change) {
    json b = body;
    change(b);
    if (b == body)
      return;  // no change under this policy (e.g. NetworkDisabled)
    out.push_back({std::move(what), base.query, b.dump()});
  };

  // The shapes that reached the engine through the regex proxy.
  with("CapAdd as a string",
       [](json& b) { b["HostConfig"]["CapAdd"] = "SYS_ADMIN"; });
  with("User 0:0 and CapAdd", [](json& b) {
    b["User"] = "0:0";
    b["HostConfig"]["CapAdd"] = "SYS_ADMIN";
  });
  for (const char* opt :
       {"unmask=ALL", "seccomp=/etc/passwd", "seccomp=unconfined",
        "apparmor=unconfined", "label=disable", "label=type:spc_t",
        "systempaths=unconfined", "mask=/proc/kcore"}) {
    with(absl::StrCat("SecurityOpt ", opt), [&](json& b) {
      b["HostConfig"]["SecurityOpt"] = {"no-new-privileges", opt};
    });
    with(absl::StrCat("SecurityOpt only ", opt),
         [&](json& b) { b["HostConfig"]["SecurityOpt"] = {opt}; });
  }
  // What breaks the project's own rules.
  for (const char* user : {"0", "0:0", "root", "65534", "65534:0", "0:65534",
                           "1000:1000", " 65534:65534", "65534:65534:0"}) {
    with(absl::StrCat("User ", user), [&](json& b) { b["User"] = user; });
  }
  with("no CapDrop", [](json& b) { b["HostConfig"].erase("CapDrop"); });
  with("CapDrop NET_RAW only",
       [](json& b) { b["HostConfig"]["CapDrop"] = {"NET_RAW"}; });
  with("CapDrop lower-case all",
       [](json& b) { b["HostConfig"]["CapDrop"] = {"all"}; });
  with("ReadonlyRootfs false",
       [](json& b) { b["HostConfig"]["ReadonlyRootfs"] = false; });
  with("no SecurityOpt", [](json& b) { b["HostConfig"].erase("SecurityOpt"); });
  for (const char* mode :
       {"bridge", "host", "default", "container:x", "ns:/proc/1/ns/net",
        "slirp4netns", "pasta", "private"}) {
    with(absl::StrCat("NetworkMode ", mode),
         [&](json& b) { b["HostConfig"]["NetworkMode"] = mode; });
  }
  with("NetworkDisabled false", [](json& b) { b["NetworkDisabled"] = false; });
  with("no Memory", [](json& b) { b["HostConfig"].erase("Memory"); });
  with("no PidsLimit", [](json& b) { b["HostConfig"].erase("PidsLimit"); });
  with("MemorySwap -1", [](json& b) { b["HostConfig"]["MemorySwap"] = -1; });
  with("PidsLimit -1", [](json& b) { b["HostConfig"]["PidsLimit"] = -1; });
  with("Memory 0", [](json& b) {
    b["HostConfig"]["Memory"] = 0;
    b["HostConfig"]["MemorySwap"] = 0;
  });
  with("Memory over the maximum", [](json& b) {
    const int64_t m = policy::ContainerPolicyOptions().max_memory_bytes + 1;
    b["HostConfig"]["Memory"] = m;
    b["HostConfig"]["MemorySwap"] = m;
  });
  with("PidsLimit over the maximum", [](json& b) {
    b["HostConfig"]["PidsLimit"] =
        policy::ContainerPolicyOptions().max_pids_limit + 1;
  });
  with("NanoCpus over the maximum", [](json& b) {
    b["HostConfig"]["NanoCpus"] =
        (policy::ContainerPolicyOptions().max_cpu_millis + 1) * 1'000'000;
  });
  with("NanoCpus not whole millis", [](json& b) {
    b["HostConfig"]["NanoCpus"] =
        b["HostConfig"]["NanoCpus"].get<int64_t>() + 1;
  });
  with("Memory as a float", [](json& b) {
    b["HostConfig"]["Memory"] = b["HostConfig"]["Memory"].get<double>();
  });
  with("Tmpfs /tmp executable", [](json& b) {
    b["HostConfig"]["Tmpfs"]["/tmp"] = "rw,exec,mode=1777,size=65536";
  });
  with("Tmpfs /tmp over the maximum", [](json& b) {
    b["HostConfig"]["Tmpfs"]["/tmp"] =
        absl::StrCat("rw,noexec,nosuid,nodev,mode=1777,size=",
                     policy::ContainerPolicyOptions().max_tmpfs_bytes + 1);
  });
  with("Tmpfs at another path", [](json& b) {
    b["HostConfig"]["Tmpfs"]["/dev/shm2"] = "rw,exec,size=1g";
  });
  with("Ulimits nofile raised", [](json& b) {
    b["HostConfig"]["Ulimits"][0]["Soft"] = 1048576;
    b["HostConfig"]["Ulimits"][0]["Hard"] = 1048576;
  });
  with("RestartPolicy always",
       [](json& b) { b["HostConfig"]["RestartPolicy"]["Name"] = "always"; });
  with("AutoRemove true",
       [](json& b) { b["HostConfig"]["AutoRemove"] = true; });
  with("Tty true", [](json& b) { b["Tty"] = true; });
  with("AttachStdout true", [](json& b) { b["AttachStdout"] = true; });
  with("image from another registry",
       [](json& b) { b["Image"] = "docker.io/library/alpine:latest"; });
  with("image with a path trick",
       [](json& b) { b["Image"] = "localhost/crucible/../evil:latest"; });
  with("no executor label",
       [](json& b) { b["Labels"].erase(policy::kExecutorLabel); });
  with("an extra label",
       [](json& b) { b["Labels"]["io.podman.annotations.x"] = "1"; });
  with("attempt label not canonical",
       [](json& b) { b["Labels"][policy::kAttemptLabel] = "01"; });
  // The trace label: exactly 32 lowercase hex digits, not all zeros, or
  // absent.
  for (const char* trace :
       {"", "0", "00000000000000000000000000000000",
        "0000000000000000000000000000ABCD", "00000000000000000000000000000abcd",
        "0000000000000000000000000000abc", "0000000000000000000000000000abcg",
        "000000000000000000000000000abcd\n", "0000000000000000000000000000abc ",
        "x\",\"crucible.executor\":\"other"}) {
    with(absl::StrCat("trace label \"", trace, "\""),
         [&](json& b) { b["Labels"][policy::kTraceLabel] = trace; });
  }
  with("trace label a number",
       [](json& b) { b["Labels"][policy::kTraceLabel] = 1; });
  with("trace label under another key", [](json& b) {
    b["Labels"]["crucible.trace"] = b["Labels"][policy::kTraceLabel];
    b["Labels"].erase(policy::kTraceLabel);
  });
  with("Env entry without =",
       [](json& b) { b["Env"].push_back("LD_PRELOAD"); });
  with("Env unsorted", [](json& b) { b["Env"] = {"Z=1", "A=1"}; });
  with("Cmd with a NUL", [](json& b) { b["Cmd"] = {std::string("a\0b", 3)}; });
  with("relative WorkingDir",
       [](json& b) { b["WorkingDir"] = "relative/dir"; });
  with("HostConfig missing", [](json& b) { b.erase("HostConfig"); });
  with("Labels missing", [](json& b) { b.erase("Labels"); });
  with("HostConfig as an array",
       [](json& b) { b["HostConfig"] = json::array({b["HostConfig"]}); });

  // Every field of the engine's schema that a plan never sets.
  for (const auto& [key, value] : HostConfigExtras()) {
    if (body["HostConfig"].contains(key)) continue;
    json b = body;
    b["HostConfig"][key] = json::parse(value);
    out.push_back(
        {absl::StrCat("HostConfig.", key, " ", value), base.query, b.dump()});
  }
  for (const auto& [key, value] : ConfigExtras()) {
    if (body.contains(key)) continue;
    json b = body;
    b[key] = json::parse(value);
    out.push_back({absl::StrCat(key, " ", value), base.query, b.dump()});
  }

  // Every key at every level: case, escapes, a folding letter, duplicates,
  // removal, another type.
  std::vector<Path> paths;
  KeyPaths(body, {}, paths);
  for (const Path& p : paths) {
    const std::string& key = p.back();
    if (key[0] == '#') continue;
    const std::string where = absl::StrJoin(p, ".");
    std::string lower = key, upper = key;
    lower[0] = absl::ascii_tolower(static_cast<unsigned char>(lower[0]));
    absl::AsciiStrToUpper(&upper);
    for (const std::string& k : {lower, upper}) {
      if (k != key)
        add(absl::StrCat(where, " spelled ", k),
            {Edit::kRename, p, json(k).dump()});
    }
    add(absl::StrCat(where, " with an escaped letter"),
        {Edit::kRename, p,
         absl::StrFormat("\"\\u%04x%s\"", static_cast<unsigned char>(key[0]),
                         key.substr(1))});
    for (const char* fold : {"\xc5\xbf", "\xe2\x84\xaa"}) {  // U+017F, U+212A
      add(absl::StrCat(where, " with a folding letter"),
          {Edit::kRename, p, absl::StrCat("\"", fold, key.substr(1), "\"")});
    }
    add(absl::StrCat(where, " duplicated"), {Edit::kDuplicate, p, ""});
    // Optional keys: without them the body is another real one.
    if (where != "Cmd" && where != "WorkingDir" &&
        where != absl::StrCat("Labels.", policy::kTraceLabel)) {
      add(absl::StrCat(where, " removed"), {Edit::kRemove, p, ""});
    }
    const json::value_t type = At(body, p).type();
    for (const auto& [t, text] : Retypes()) {
      if (!SameKind(t, type)) {
        add(absl::StrCat(where, " as ", text), {Edit::kReplace, p, text});
      }
    }
  }

  // Raw-byte tricks.
  out.push_back({"a second JSON document", base.query, base.body + "{}"});
  out.push_back({"trailing garbage", base.query, base.body + "x"});
  out.push_back({"a top-level array", base.query, "[" + base.body + "]"});
  out.push_back(
      {"invalid UTF-8", base.query, std::string("{\"Image\":\"\xff\"}")});
  out.push_back({"empty body", base.query, ""});
  out.push_back({"deep nesting", base.query,
                 std::string(5000, '[') + std::string(5000, ']')});
  out.push_back({"over the size limit", base.query,
                 body.dump().substr(0, base.body.size() - 1) + "," +
                     json("P").dump() + ":\"" +
                     std::string(policy::kMaxCreateBodyBytes, 'x') + "\"}"});

  // Wrong queries.
  for (const std::string& q :
       {std::string(""), std::string("name=victim"),
        std::string("name=crucible-other"), base.query + "&platform=linux",
        "platform=linux&" + base.query, base.query + "x",
        std::string("name=crucible-")}) {
    out.push_back({absl::StrCat("query ", q), q, base.body});
  }
  return out;
}

}  // namespace testing_util
