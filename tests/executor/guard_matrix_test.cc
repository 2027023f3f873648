// The engine guard behind the real docker-proxy, in front of the real
// engine (the test stack: HAProxy with deploy/docker-proxy/haproxy.cfg and
// crucible-docker-guard with the built-in policy): every create body the
// executor's policy plans is created; every hostile one (the generated
// family of tests/executor/create_bodies.h) is refused before the engine,
// and the engine shows that none of them was created.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "executor/policy/scratch.h"
#include "executor/runner/tar.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/executor/create_bodies.h"
#include "tests/testing/test_stack.h"

namespace {

using testing_util::CreateRequest;

struct Answer {
  long code = 0;  // NOLINT(runtime/int): curl's type
  std::string body;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request with libcurl; `unix_socket` empty means TCP to `url`'s host.
Answer Request(const std::string& method, const std::string& url,
               const std::string& body, const std::string& unix_socket = "") {
  Answer a;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return a;
  curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  }
  if (!unix_socket.empty()) {
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, unix_socket.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.code);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return a;
}

// Sends raw bytes to 127.0.0.1:`port` and returns what comes back within
// `wait` (the connection is closed by the peer, or the wait ends).
std::string RawExchange(int port, const std::string& bytes,
                        absl::Duration wait) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n =
          send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    timeval tv = absl::ToTimeval(wait);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
      out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

class GuardMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    base_ = absl::StrCat("http://",
                         absl::StripPrefix(stack_.docker_host, "tcp://"));
    ASSERT_TRUE(absl::SimpleAtoi(
        stack_.docker_host.substr(stack_.docker_host.rfind(':') + 1), &port_));
    prefix_ = absl::StrFormat("gm%08x", absl::Uniform<uint32_t>(bitgen_));
  }

  // Whatever a failed assertion let through is removed, on the engine itself.
  void TearDown() override {
    if (stack_.engine_socket.empty()) return;
    // Containers first: a volume in use cannot be removed.
    for (const std::string& name : ContainersNamed(prefix_)) {
      Request("DELETE",
              absl::StrCat("http://engine/v1.41/containers/",
                           absl::StripPrefix(name, "/"), "?force=1"),
              "", stack_.engine_socket);
    }
    for (const std::string& name : VolumesNamed(prefix_)) {
      Request("DELETE", absl::StrCat("http://engine/v1.41/volumes/", name), "",
              stack_.engine_socket);
    }
  }

  // Names of the engine's containers (on its own socket) containing `part`.
  std::vector<std::string> ContainersNamed(const std::string& part) {
    const std::string filters = absl::StrCat(R"({"name":[")", part, R"("]})");
    char* escaped = curl_easy_escape(nullptr, filters.c_str(), 0);
    Answer a = Request(
        "GET",
        absl::StrCat("http://engine/v1.41/containers/json?all=1&filters=",
                     escaped),
        "", stack_.engine_socket);
    curl_free(escaped);
    std::vector<std::string> names;
    EXPECT_EQ(a.code, 200) << a.body;
    nlohmann::json list = nlohmann::json::parse(a.body, nullptr, false);
    if (!list.is_array()) return names;
    for (const auto& c : list) {
      for (const auto& n : c.value("Names", nlohmann::json::array())) {
        names.push_back(n.get<std::string>());
      }
    }
    return names;
  }

  // Names of the engine's volumes (on its own socket) containing `part`.
  std::vector<std::string> VolumesNamed(const std::string& part) {
    Answer a =
        Request("GET", "http://engine/v1.41/volumes", "", stack_.engine_socket);
    std::vector<std::string> names;
    EXPECT_EQ(a.code, 200) << a.body;
    nlohmann::json list = nlohmann::json::parse(a.body, nullptr, false);
    if (!list.is_object() || !list["Volumes"].is_array()) return names;
    for (const auto& v : list["Volumes"]) {
      const std::string name = v.value("Name", "");
      if (absl::StrContains(name, part)) names.push_back(name);
    }
    return names;
  }

  testing_util::TestStack stack_;
  std::string base_;
  int port_ = 0;
  absl::BitGen bitgen_;
  std::string prefix_;  // in every run id (and so container name) made here
};

TEST_F(GuardMatrixTest, EveryRealBodyIsCreated) {
  auto options = testing_util::GuardTestPolicy(/*named_network=*/false);
  options.executor_id = prefix_;
  const auto real =
      testing_util::RealCreateRequests(options, prefix_ + "-real-");
  ASSERT_EQ(real.size(), 32u);
  for (const CreateRequest& r : real) {
    for (const char* version : {"/v1.41", ""}) {
      Answer created = Request(
          "POST", absl::StrCat(base_, version, "/containers/create?", r.query),
          r.body);
      EXPECT_EQ(created.code, 201) << r.what << ": " << created.body;
      const std::string name(absl::StripPrefix(r.query, "name="));
      EXPECT_EQ(
          Request("DELETE",
                  absl::StrCat(base_, "/v1.41/containers/", name, "?force=1"),
                  "")
              .code,
          204)
          << r.what;
    }
  }
  EXPECT_TRUE(ContainersNamed(prefix_).empty());
}

TEST_F(GuardMatrixTest, EveryHostileBodyIsRefusedAndNothingIsCreated) {
  auto options = testing_util::GuardTestPolicy(/*named_network=*/false);
  options.executor_id = prefix_;
  const CreateRequest base =
      testing_util::RealCreateRequests(options, prefix_ + "-bad-").back();
  const auto hostile = testing_util::HostileCreateRequests(base);
  ASSERT_GT(hostile.size(), 300u);
  for (const CreateRequest& r : hostile) {
    Answer a = Request(
        "POST", absl::StrCat(base_, "/v1.41/containers/create?", r.query),
        r.body);
    // 403 from the guard (or HAProxy), 413 for the oversized body: never
    // the engine's own answer.
    EXPECT_TRUE(a.code == 403 || a.code == 413)
        << r.what << ": HTTP " << a.code << " " << a.body.substr(0, 300);
  }
  EXPECT_TRUE(ContainersNamed(prefix_).empty())
      << "a hostile create reached the engine";
}

// Transfer-encoded bodies, oversized header blocks and bodies that are
// larger than the advertised length never reach the engine.
TEST_F(GuardMatrixTest, HttpTricksAreRefused) {
  auto options = testing_util::GuardTestPolicy(/*named_network=*/false);
  options.executor_id = prefix_;
  const CreateRequest real =
      testing_util::RealCreateRequests(options, prefix_ + "-http-").front();
  const std::string head =
      absl::StrCat("POST /v1.41/containers/create?", real.query,
                   " HTTP/1.1\r\nHost: d\r\n"
                   "Content-Type: application/json\r\n");
  // Chunked.
  const std::string chunked = absl::StrCat(
      head, "Transfer-Encoding: chunked\r\n\r\n",
      absl::StrFormat("%x\r\n", real.body.size()), real.body, "\r\n0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(RawExchange(port_, chunked, absl::Seconds(3)),
                               "HTTP/1.1 400"));
  // A header block over 8 KiB, with the body intact.
  const std::string big_headers = absl::StrCat(
      head, "X-Pad: ", std::string(9000, 'a'),
      "\r\nContent-Length: ", real.body.size(), "\r\n\r\n", real.body);
  EXPECT_TRUE(absl::StartsWith(
      RawExchange(port_, big_headers, absl::Seconds(3)), "HTTP/1.1 400"));
  // A Content-Length shorter than the body: the rest is a second request,
  // which is a hostile create of its own and must be refused as such.
  nlohmann::json hostile = nlohmann::json::parse(real.body);
  hostile["HostConfig"]["Privileged"] = true;
  const std::string smuggled = absl::StrCat(
      head, "Content-Length: 2\r\n\r\n{}", head,
      "Content-Length: ", hostile.dump().size(), "\r\n\r\n", hostile.dump());
  const std::string answer = RawExchange(port_, smuggled, absl::Seconds(3));
  EXPECT_FALSE(absl::StrContains(answer, "HTTP/1.1 201")) << answer;
  EXPECT_TRUE(ContainersNamed(prefix_).empty());
}

// A run with files or artifacts (issue 25): its scratch volume and the
// container binding it are created; another object's name, other mount or
// volume options, another path or a bind of a host path are refused before
// the engine, which shows no such container or volume afterwards.
TEST_F(GuardMatrixTest, ScratchVolumesAndBindsAreOnlyTheRunsOwn) {
  auto options = testing_util::GuardTestPolicy(/*named_network=*/false);
  options.executor_id = prefix_;
  auto policy = policy::ContainerPolicy::Create(options);
  ASSERT_TRUE(policy.ok()) << policy.status();
  crucible::v1::RunRequest req;
  req.set_run_id(prefix_ + "-scratch");
  req.set_task_id("t");
  req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  req.mutable_spec()->add_command("true");
  req.mutable_spec()->add_artifacts("out/*.json");
  auto plan = policy->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const nlohmann::json volume = plan->scratch_volume_body;
  const nlohmann::json create = plan->create_body;
  const std::string volumes_url = absl::StrCat(base_, "/v1.41/volumes/create");
  const std::string create_url =
      absl::StrCat(base_, "/v1.41/containers/create?name=", plan->name);

  // Hostile volume creates.
  std::vector<std::pair<std::string, nlohmann::json>> bad_volumes;
  auto bad_volume = [&](const std::string& what, auto mutate) {
    nlohmann::json v = volume;
    mutate(v);
    bad_volumes.emplace_back(what, v);
  };
  bad_volume("another object's name",
             [&](auto& v) { v["Name"] = prefix_ + "-other"; });
  bad_volume("a name with a path",
             [&](auto& v) { v["Name"] = "crucible-../" + prefix_; });
  bad_volume("a bind of a host path", [&](auto& v) {
    v["DriverOpts"] = {{"type", "none"}, {"device", "/etc"}, {"o", "bind"}};
  });
  bad_volume("another driver", [&](auto& v) { v["Driver"] = "image"; });
  bad_volume("exec allowed", [&](auto& v) {
    v["DriverOpts"]["o"] = "nosuid,nodev,mode=1777,nr_blocks=1,nr_inodes=16384";
  });
  bad_volume("a host uid", [&](auto& v) {
    v["DriverOpts"]["o"] = absl::StrCat(
        v["DriverOpts"]["o"].template get<std::string>(), ",uid=0");
  });
  bad_volume("another device",
             [&](auto& v) { v["DriverOpts"]["device"] = "/dev/vda"; });
  bad_volume("above the maximum", [&](auto& v) {
    v["DriverOpts"]["o"] = policy::ScratchTmpfsOptions(
        options.max_scratch_bytes + policy::kScratchBlockBytes);
  });
  bad_volume("labels", [&](auto& v) { v["Labels"] = {{"a", "b"}}; });
  bad_volume("no options", [&](auto& v) { v.erase("DriverOpts"); });
  for (const auto& [what, v] : bad_volumes) {
    Answer a = Request("POST", volumes_url, v.dump());
    EXPECT_EQ(a.code, 403) << what << ": " << a.body.substr(0, 300);
  }
  EXPECT_TRUE(VolumesNamed(prefix_).empty())
      << "a hostile volume create reached the engine";

  // Hostile container creates: any bind but the run's own volume at its
  // working dir with exactly noexec,nosuid,nodev.
  std::vector<std::pair<std::string, nlohmann::json>> bad_creates;
  auto bad_create = [&](const std::string& what, nlohmann::json binds,
                        const char* working_dir = "/work") {
    nlohmann::json c = create;
    c["HostConfig"]["Binds"] = std::move(binds);
    c["WorkingDir"] = working_dir;
    bad_creates.emplace_back(what, c);
  };
  const std::string name = plan->name;
  bad_create("another object's volume",
             {absl::StrCat(prefix_, "-other:/work:rw,noexec,nosuid,nodev")});
  bad_create("another run's volume",
             {absl::StrCat(name, "x:/work:rw,noexec,nosuid,nodev")});
  bad_create("exec", {absl::StrCat(name, ":/work:rw,nosuid,nodev")});
  bad_create("suid", {absl::StrCat(name, ":/work:rw,noexec,nodev")});
  bad_create("other options",
             {absl::StrCat(name, ":/work:rw,noexec,nosuid,nodev,shared")});
  bad_create("another path",
             {absl::StrCat(name, ":/etc:rw,noexec,nosuid,nodev")});
  bad_create("another working dir",
             {absl::StrCat(name, ":/work:rw,noexec,nosuid,nodev")}, "/etc");
  bad_create("a bind of a host path", {"/etc:/work:rw,noexec,nosuid,nodev"});
  bad_create("a bind of the engine socket",
             {absl::StrCat(name, ":/work:rw,noexec,nosuid,nodev"),
              "/run/podman/podman.sock:/s:rw"});
  bad_create("two binds", {absl::StrCat(name, ":/work:rw,noexec,nosuid,nodev"),
                           absl::StrCat(name, ":/w2:rw,noexec,nosuid,nodev")});
  bad_create("a bind as a string", absl::StrCat(name, ":/work"));
  {
    nlohmann::json c = create;
    c["HostConfig"].erase("Binds");
    c["HostConfig"]["Mounts"] = {
        {{"Type", "volume"}, {"Source", name}, {"Target", "/work"}}};
    bad_creates.emplace_back("a mount instead of a bind", c);
  }
  for (const auto& [what, c] : bad_creates) {
    Answer a = Request("POST", create_url, c.dump());
    EXPECT_EQ(a.code, 403) << what << ": " << a.body.substr(0, 300);
  }
  EXPECT_TRUE(ContainersNamed(prefix_).empty())
      << "a hostile create reached the engine";

  // The holder (crucible-<run id>.keep) only of a body with the scratch
  // bind, and only under exactly that name.
  {
    nlohmann::json plain = create;
    plain["HostConfig"].erase("Binds");
    plain.erase("WorkingDir");
    EXPECT_EQ(
        Request("POST", absl::StrCat(create_url, ".keep"), plain.dump()).code,
        403)
        << "a holder without a scratch volume";
    for (const char* suffix : {".kept", ".keep.keep", "-keep", ".keep2"}) {
      EXPECT_EQ(
          Request("POST", absl::StrCat(create_url, suffix), create.dump()).code,
          403)
          << suffix;
    }
  }
  EXPECT_TRUE(ContainersNamed(prefix_).empty())
      << "a hostile holder create reached the engine";

  // The real ones, then removed: nothing left.
  EXPECT_EQ(
      Request("POST", absl::StrCat(create_url, ".keep"), create.dump()).code,
      201);
  EXPECT_EQ(
      Request("DELETE",
              absl::StrCat(base_, "/v1.41/containers/", name, ".keep?force=1"),
              "")
          .code,
      204);
  EXPECT_EQ(Request("POST", volumes_url, volume.dump()).code, 201);
  EXPECT_EQ(Request("POST", create_url, create.dump()).code, 201);
  EXPECT_EQ(
      Request("DELETE",
              absl::StrCat(base_, "/v1.41/containers/", name, "?force=1"), "")
          .code,
      204);
  EXPECT_EQ(
      Request("DELETE", absl::StrCat(base_, "/v1.41/volumes/", name), "").code,
      204);
  // Only crucible-* volumes may be removed.
  EXPECT_EQ(
      Request("DELETE", absl::StrCat(base_, "/v1.41/volumes/other"), "").code,
      403);
  EXPECT_TRUE(ContainersNamed(prefix_).empty());
  EXPECT_TRUE(VolumesNamed(prefix_).empty());
}

// `tar` with the header at `at` changed: `bytes` written at `offset` within
// it, and its checksum made right again (a header any tar reader accepts).
std::string Patched(std::string tar, size_t at, size_t offset,
                    const std::string& bytes) {
  tar.replace(at + offset, bytes.size(), bytes);
  std::memset(tar.data() + at + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) {
    sum += static_cast<unsigned char>(tar[at + i]);
  }
  const std::string field = absl::StrFormat("%06o", sum);
  tar.replace(at + 148, 7, field + std::string(1, '\0'));
  return tar;
}

// The scratch area's archive calls reach the engine only as a run makes
// them, decided by the guard on the engine's inspect of the container: the
// input files' tar into the run's own scratch directory before start, and
// the download of DIR/. after. Any other path, container or time, and any
// tar but plain files and directories, is 403, and nothing of it lands.
TEST_F(GuardMatrixTest, ArchiveCallsReachOnlyTheRunsScratchDirectory) {
  auto options = testing_util::GuardTestPolicy(/*named_network=*/false);
  options.executor_id = prefix_;
  auto policy = policy::ContainerPolicy::Create(options);
  ASSERT_TRUE(policy.ok()) << policy.status();
  crucible::v1::RunRequest req;
  req.set_run_id(prefix_ + "-archive");
  req.set_task_id("t");
  req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  for (const char* arg :
       {"sh", "-c",
        "mkdir out && cp in.txt out/copy.json && ln -s /bin out/bin"}) {
    req.mutable_spec()->add_command(arg);
  }
  crucible::v1::InputFile* file = req.mutable_spec()->add_files();
  file->set_path("in.txt");
  file->set_content("hi\n");
  req.mutable_spec()->add_artifacts("out/*");
  auto plan = policy->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string name = plan->name;
  const std::string dir = plan->scratch_dir;
  const std::string v = absl::StrCat(base_, "/v1.41");
  auto archive = [&](const std::string& container, const std::string& path) {
    return absl::StrCat(v, "/containers/", container, "/archive?path=", path);
  };
  ASSERT_EQ(
      Request("POST", v + "/volumes/create", plan->scratch_volume_body.dump())
          .code,
      201);
  for (const std::string& c : {name + ".keep", name}) {
    ASSERT_EQ(Request("POST", absl::StrCat(v, "/containers/create?name=", c),
                      plan->create_body.dump())
                  .code,
              201)
        << c;
    ASSERT_EQ(
        Request("POST",
                absl::StrCat(base_, "/v4.0.0/libpod/containers/", c, "/init"),
                "")
            .code,
        204)
        << c;
  }
  // Another run's container, without a scratch volume.
  crucible::v1::RunRequest plain_req = req;
  plain_req.set_run_id(prefix_ + "-plain");
  plain_req.mutable_spec()->clear_files();
  plain_req.mutable_spec()->clear_artifacts();
  auto plain = policy->Plan(plain_req);
  ASSERT_TRUE(plain.ok()) << plain.status();
  const std::string other = plain->name;
  ASSERT_EQ(Request("POST", absl::StrCat(v, "/containers/create?name=", other),
                    plain->create_body.dump())
                .code,
            201);

  auto tar =
      runner::BuildTar({{.path = "in.txt", .content = "hi\n"}}, 65534, 65534);
  ASSERT_TRUE(tar.ok()) << tar.status();
  auto evil = runner::BuildTar(
      {{.path = "evil", .content = "#!/bin/sh\necho owned\n", .mode = 0755}}, 0,
      0);
  ASSERT_TRUE(evil.ok()) << evil.status();
  // Elsewhere in the run's container, in its holder, in another container.
  for (const std::string& path :
       std::vector<std::string>{"/", "/bin", "/tmp", dir + "/.", "/etc"}) {
    EXPECT_EQ(Request("PUT", archive(name, path), *evil).code, 403) << path;
  }
  EXPECT_EQ(Request("PUT", archive(name + ".keep", dir), *evil).code, 403);
  EXPECT_EQ(Request("PUT", archive(other, dir), *evil).code, 403);
  EXPECT_EQ(Request("PUT", archive(other, "/tmp"), *evil).code, 403);
  // Tars the engine would make links from, or read otherwise than the guard.
  std::vector<std::pair<std::string, std::string>> hostile = {
      {"a symlink", Patched(Patched(*evil, 0, 156, "2"), 0, 157, "/bin")},
      {"a hard link", Patched(Patched(*evil, 0, 156, "1"), 0, 157, "/bin/sh")},
      {"a PAX header", Patched(*evil, 0, 156, "x") + *evil},
      {"a GNU long name", Patched(*evil, 0, 156, "L") + *evil},
      {"a device", Patched(*evil, 0, 156, "3")},
      {"setuid", Patched(*evil, 0, 100, "0004755")},
      {"a name out of the directory", Patched(*evil, 0, 0, "../evil")},
      {"an absolute name", Patched(*evil, 0, 0, "/bin/evil")},
      {"GNU magic", Patched(*evil, 0, 257, std::string("ustar  \0", 8))},
      {"a size read two ways", Patched(*evil, 0, 124, std::string(1, '\0'))},
      {"a bad checksum",
       [&] {
         std::string t = *evil;
         t[0] = 'E';
         return t;
       }()},
      {"bytes after the end", *evil + "trailing"},
      {"no end", evil->substr(0, 1024)},
  };
  for (const auto& [what, body] : hostile) {
    Answer a = Request("PUT", archive(name, dir), body);
    EXPECT_EQ(a.code, 403) << what << ": " << a.body.substr(0, 200);
  }
  // Downloads of anything but DIR/. of the run's own container.
  for (const std::string& path :
       std::vector<std::string>{"/etc/passwd", "/", dir, dir + "/in.txt"}) {
    EXPECT_EQ(Request("GET", archive(name, path), "").code, 403) << path;
  }
  EXPECT_EQ(Request("GET", archive(name + ".keep", dir + "/."), "").code, 403);
  EXPECT_EQ(Request("GET", archive(other, dir + "/."), "").code, 403);
  EXPECT_EQ(Request("GET", archive(name + "-none", dir + "/."), "").code, 404);

  // The run's own calls.
  Answer put = Request("PUT", archive(name, dir), *tar);
  EXPECT_EQ(put.code, 200) << put.body;
  ASSERT_EQ(
      Request("POST", absl::StrCat(v, "/containers/", name, "/start"), "").code,
      204);
  Answer waited = Request(
      "POST",
      absl::StrCat(v, "/containers/", name, "/wait?condition=not-running"), "");
  EXPECT_EQ(waited.code, 200);
  EXPECT_TRUE(absl::StrContains(waited.body, "\"StatusCode\":0"))
      << waited.body;
  // No upload once the task has run (it may have left links, as here).
  EXPECT_EQ(Request("PUT", archive(name, dir), *tar).code, 403);
  Answer got = Request("GET", archive(name, dir + "/."), "");
  ASSERT_EQ(got.code, 200) << got.body.substr(0, 200);
  auto entries = runner::ParseTar(got.body);
  ASSERT_TRUE(entries.ok()) << entries.status();
  std::map<std::string, runner::TarEntry> by_path;
  for (runner::TarEntry& e : *entries) {
    by_path[std::string(absl::StripPrefix(e.path, "./"))] = e;
  }
  EXPECT_EQ(by_path["in.txt"].content, "hi\n");
  EXPECT_EQ(by_path["out/copy.json"].content, "hi\n");
  EXPECT_EQ(by_path["out/bin"].type, '2') << "a link comes back as a link";

  // Nothing of the refused uploads is anywhere, asked on the engine itself.
  for (const std::string& path : std::vector<std::string>{
           "/evil", "/bin/evil", "/tmp/evil", "/etc/evil", dir + "/evil"}) {
    EXPECT_EQ(Request("GET",
                      absl::StrCat("http://engine/v1.41/containers/", name,
                                   "/archive?path=", path),
                      "", stack_.engine_socket)
                  .code,
              404)
        << path;
  }
}

}  // namespace
