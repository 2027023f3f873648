// The docker-proxy's ownership rules (deploy/docker-proxy/haproxy.cfg), with
// the real HAProxy in front of the real engine: other workloads share the
// engine, and even a subverted executor must not read, feed, start, stop or
// remove their containers, nor list them. Containers are made on the
// engine's own socket, past the proxy, as another workload would make them;
// then every per-container call goes through the proxy: 403 on any
// container not named crucible-*, by name or by hex id, with and without
// the /vX.Y prefix; allowed on a crucible-* one. The list is allowed only
// with exactly the executor's label filter.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "executor/docker/engine_client.h"
#include "executor/policy/container_policy.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/executor/engine_env.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using nlohmann::json;

struct Answer {
  int code = 0;
  std::string body;
};

// One HTTP request with curl, the path sent as written (--path-as-is), to
// `base` over TCP or, with `unix_socket`, to the engine itself. After
// `max_time` seconds curl gives up, still reporting the status it got.
Answer Call(const std::string& base, const std::string& method,
            const std::string& path, const std::string& body = "",
            int max_time = 10, const std::string& unix_socket = "") {
  // -g: brackets and braces in a query are sent as they are.
  std::vector<std::string> argv = {"/usr/bin/curl",
                                   "-sS",
                                   "-g",
                                   "--path-as-is",
                                   "--max-time",
                                   std::to_string(max_time),
                                   "-w",
                                   "\n%{http_code}",
                                   "-X",
                                   method};
  if (!unix_socket.empty())
    argv.insert(argv.end(), {"--unix-socket", unix_socket});
  if (!body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json",
                             "--data-binary", body});
  }
  argv.push_back(base + path);
  auto r = testing_util::RunCommand(argv, absl::Seconds(max_time + 20));
  EXPECT_TRUE(r.ok()) << r.status();
  Answer a;
  if (!r.ok()) return a;
  absl::string_view out = r->out;
  size_t nl = out.rfind('\n');
  EXPECT_TRUE(nl != absl::string_view::npos &&
              absl::SimpleAtoi(out.substr(nl + 1), &a.code))
      << r->out << r->err;
  if (nl != absl::string_view::npos) a.body = std::string(out.substr(0, nl));
  return a;
}

// 16 random hex digits.
std::string RandomHex() {
  unsigned char bytes[8] = {0};
  FILE* f = fopen("/dev/urandom", "rb");
  EXPECT_NE(f, nullptr);
  if (f != nullptr) {
    EXPECT_EQ(fread(bytes, 1, sizeof(bytes), f), sizeof(bytes));
    fclose(f);
  }
  std::string out;
  for (unsigned char b : bytes)
    absl::StrAppend(&out, absl::Hex(b, absl::kZeroPad2));
  return out;
}

class ProxyOwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    ASSERT_FALSE(stack_.engine_socket.empty()) << "run through ctest";
    proxy_ = absl::StrCat("http://",
                          absl::StripPrefix(stack_.docker_host, "tcp://"));
  }

  void TearDown() override {
    for (const std::string& id : made_) {
      Answer a = Engine("DELETE", "/v1.41/containers/" + id + "?force=1&v=1");
      EXPECT_TRUE(a.code == 204 || a.code == 404) << a.code << " " << a.body;
    }
  }

  // A request to the engine itself, past the proxy.
  Answer Engine(const std::string& method, const std::string& path,
                const std::string& body = "") {
    return Call("http://engine", method, path, body, 30, stack_.engine_socket);
  }

  // Creates a container on the engine itself (named `name`, or by the
  // engine if empty) that would sleep a minute; returns its hex id.
  std::string CreateOnEngine(const std::string& name, const json& labels) {
    json body = {{"Image", executor_testing::kBusybox},
                 {"Cmd", {"sh", "-c", "echo owned-output; sleep 60"}},
                 {"OpenStdin", true},
                 {"User", "65534:65534"},
                 {"Labels", labels},
                 {"HostConfig",
                  {{"NetworkMode", "none"},
                   {"CapDrop", {"ALL"}},
                   {"Ulimits",
                    {{{"Name", "nofile"}, {"Soft", 1024}, {"Hard", 1024}},
                     {{"Name", "nproc"}, {"Soft", 1024}, {"Hard", 1024}}}}}}};
    Answer a = Engine("POST",
                      "/v1.41/containers/create" +
                          (name.empty() ? std::string() : "?name=" + name),
                      body.dump());
    EXPECT_EQ(a.code, 201) << a.body;
    if (a.code != 201) return "";
    const std::string id = json::parse(a.body)["Id"];
    made_.push_back(id);
    return id;
  }

  // The engine's view of a container: its State.Status and its name.
  std::pair<std::string, std::string> StatusAndName(const std::string& id) {
    Answer a = Engine("GET", "/v1.41/containers/" + id + "/json");
    EXPECT_EQ(a.code, 200) << a.body;
    if (a.code != 200) return {"", ""};
    json j = json::parse(a.body);
    return {j["State"]["Status"].get<std::string>(),
            std::string(absl::StripPrefix(j["Name"].get<std::string>(), "/"))};
  }

  // The executor's list query for `executor_id`, exactly as EngineClient
  // sends it (tests/executor/engine_client_test.cc checks those bytes).
  static std::string ExecutorListQuery(const std::string& executor_id) {
    return absl::StrCat(
        "all=1&filters=%7B%22label%22%3A%5B%22crucible.executor%3D",
        executor_id, "%22%5D%7D");
  }

  testing_util::TestStack stack_;
  std::string proxy_;
  std::vector<std::string> made_;  // hex ids, removed in TearDown
};

// Every call the executor makes on one container, as the executor makes it.
struct ContainerCall {
  const char* method;
  const char* suffix;  // after /containers/{ref}
};
constexpr ContainerCall kContainerCalls[] = {
    {"POST", "/wait?condition=next-exit"},
    {"POST", "/start"},
    {"GET", "/logs?follow=0&stdout=1&stderr=1"},
    {"POST", "/attach?stream=1&stdin=1"},
    {"POST", "/kill?signal=KILL"},
    {"GET", "/json"},
    {"DELETE", "?force=1&v=1"},
};

TEST_F(ProxyOwnershipTest, OtherWorkloadsContainersAre403ByNameAndById) {
  const std::string tag = RandomHex();
  // A foreign workload's container with a name of its own, and one the
  // engine named (a caller would know it only by its hex id).
  const std::string victim_name = "victim-" + tag;
  const std::string victim = CreateOnEngine(victim_name, {{"app", "victim"}});
  ASSERT_FALSE(victim.empty());
  const std::string unnamed = CreateOnEngine("", {{"app", "other"}});
  ASSERT_FALSE(unnamed.empty());
  const std::string unnamed_name = StatusAndName(unnamed).second;
  ASSERT_FALSE(unnamed_name.empty());
  ASSERT_FALSE(absl::StartsWith(unnamed_name, policy::kContainerNamePrefix))
      << unnamed_name;

  // Names that only look like Crucible's: not the exact prefix.
  const std::string lookalike =
      CreateOnEngine("crucible_" + tag, json::object());
  ASSERT_FALSE(lookalike.empty());

  const std::vector<std::string> refs = {
      victim_name, victim, victim.substr(0, 12), unnamed_name, unnamed,
      unnamed.substr(0, 12), "crucible_" + tag, lookalike,
      // The prefix in another case: the engine's names are case-sensitive,
      // and so is the proxy.
      "Crucible-" + tag};
  for (const std::string& prefix : {std::string(""), std::string("/v1.41")}) {
    for (const std::string& ref : refs) {
      for (const ContainerCall& c : kContainerCalls) {
        const std::string path =
            absl::StrCat(prefix, "/containers/", ref, c.suffix);
        Answer a = Call(proxy_, c.method, path, "", /*max_time=*/5);
        EXPECT_EQ(a.code, 403) << c.method << " " << path << " -> " << a.body;
      }
    }
  }

  // On the engine itself: all still there (not removed), never started (so
  // never killed either).
  for (const std::string& id : {victim, unnamed, lookalike}) {
    EXPECT_EQ(StatusAndName(id).first, "created") << id;
  }
  EXPECT_EQ(StatusAndName(victim).second, victim_name);
}

TEST_F(ProxyOwnershipTest,
       CrucibleNamedContainersAreAllowedWithAndWithoutVersion) {
  const std::string executor_id = absl::StrCat("ownership-", getpid());
  for (const std::string& prefix : {std::string(""), std::string("/v1.41")}) {
    SCOPED_TRACE(prefix.empty() ? "no version prefix" : prefix);
    const std::string run = RandomHex();
    const std::string name = policy::ContainerName(run);
    const std::string id = CreateOnEngine(
        name,
        {{policy::kExecutorLabel, executor_id}, {policy::kRunLabel, run}});
    ASSERT_FALSE(id.empty());
    const std::string c = prefix + "/containers/" + name;
    EXPECT_EQ(Call(proxy_, "GET", c + "/json").code, 200);
    EXPECT_EQ(Call(proxy_, "POST", c + "/start").code, 204);
    // Attach for stdin reaches the engine, which answers 200 (no Upgrade
    // asked for) and holds the stream: curl stops after 2 s.
    EXPECT_EQ(Call(proxy_, "POST", c + "/attach?stream=1&stdin=1", "", 2).code,
              200);
    Answer logs = Call(proxy_, "GET", c + "/logs?follow=0&stdout=1&stderr=1");
    EXPECT_EQ(logs.code, 200);
    EXPECT_TRUE(absl::StrContains(logs.body, "owned-output")) << logs.body;
    EXPECT_EQ(Call(proxy_, "POST", c + "/kill?signal=KILL").code, 204);
    Answer waited = Call(proxy_, "POST", c + "/wait?condition=not-running");
    EXPECT_EQ(waited.code, 200);
    EXPECT_TRUE(absl::StrContains(waited.body, "StatusCode")) << waited.body;
    EXPECT_EQ(Call(proxy_, "DELETE", c + "?force=1&v=1").code, 204);
    EXPECT_EQ(Engine("GET", "/v1.41/containers/" + id + "/json").code, 404);
    // Its hex id is refused all the same.
    EXPECT_EQ(Call(proxy_, "GET", prefix + "/containers/" + id + "/json").code,
              403);
  }
}

TEST_F(ProxyOwnershipTest, TheListIsAllowedOnlyWithTheExecutorsLabelFilter) {
  const std::string executor_id = absl::StrCat("ownership-list-", getpid());
  const std::string run = RandomHex();
  const std::string ours = policy::ContainerName(run);
  ASSERT_FALSE(CreateOnEngine(ours, {{policy::kExecutorLabel, executor_id},
                                     {policy::kRunLabel, run}})
                   .empty());
  const std::string victim_name = "victim-" + RandomHex();
  ASSERT_FALSE(CreateOnEngine(victim_name, {{"app", "victim"}}).empty());

  const std::string exact = ExecutorListQuery(executor_id);
  const std::string filter_only =
      absl::StrCat("filters=%7B%22label%22%3A%5B%22crucible.executor%3D",
                   executor_id, "%22%5D%7D");
  const std::vector<std::string> denied = {
      "",
      "?all=1",
      "?all=0",
      "?size=1",
      // the label key alone (any executor's value), or another label
      "?all=1&filters=%7B%22label%22%3A%5B%22crucible.executor%22%5D%7D",
      "?all=1&filters=%7B%22label%22%3A%5B%22app%3Dvictim%22%5D%7D",
      "?all=1&filters=%7B%22label%22%3A%5B%22crucible.executor%3D%22%5D%7D",
      // other filters, or more of them
      "?all=1&filters=%7B%22name%22%3A%5B%22victim%22%5D%7D",
      absl::StrCat("?all=1&filters=%7B%22label%22%3A%5B%22crucible.executor%3D",
                   executor_id, "%22%2C%22app%3Dvictim%22%5D%7D"),
      // a second "label" key: the engine keeps the last one
      absl::StrCat("?all=1&filters=%7B%22label%22%3A%5B%22crucible.executor%3D",
                   executor_id,
                   "%22%5D%2C%22label%22%3A%5B%22app%3Dvictim%22%5D%7D"),
      // the filter alone, in another order, with more parameters
      "?" + filter_only,
      "?" + filter_only + "&all=1",
      "?" + exact + "&size=1",
      "?size=1&" + exact,
      "?" + exact + "&filters=%7B%7D",
      "?" + exact + "&",
      // the same bytes spelled otherwise
      absl::StrCat("?all=1&filters=%7b%22label%22%3a%5b%22crucible.executor%3d",
                   executor_id, "%22%5d%7d"),
      absl::StrCat("?all=1&filters={\"label\":[\"crucible.executor=",
                   executor_id, "\"]}"),
      // more JSON after the filter
      absl::StrCat("?all=1&filters=%7B%22label%22%3A%5B%22crucible.executor%3D",
                   executor_id, "%22%5D%7D%2C%22x%22%3A%5B%22y%22%5D%7D"),
  };
  for (const std::string& prefix : {std::string(""), std::string("/v1.41")}) {
    for (const std::string& query : denied) {
      const std::string path = prefix + "/containers/json" + query;
      Answer a = Call(proxy_, "GET", path);
      EXPECT_EQ(a.code, 403) << path << " -> " << a.body.substr(0, 300);
      EXPECT_FALSE(absl::StrContains(a.body, victim_name)) << path;
    }
    Answer listed = Call(proxy_, "GET", prefix + "/containers/json?" + exact);
    EXPECT_EQ(listed.code, 200) << listed.body;
    EXPECT_TRUE(absl::StrContains(listed.body, ours)) << listed.body;
    EXPECT_FALSE(absl::StrContains(listed.body, victim_name)) << listed.body;
  }

  // The executor's own client gets through with exactly those bytes.
  auto client =
      docker::EngineClient::Create({.docker_host = stack_.docker_host});
  ASSERT_TRUE(client.ok()) << client.status();
  auto summaries =
      (*client)->ListContainers(policy::kExecutorLabel, executor_id);
  ASSERT_TRUE(summaries.ok()) << summaries.status();
  ASSERT_EQ(summaries->size(), 1u);
  EXPECT_EQ((*summaries)[0].name, ours);
}

}  // namespace
