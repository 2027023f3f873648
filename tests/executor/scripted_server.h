#ifndef CRUCIBLE_TESTS_EXECUTOR_SCRIPTED_SERVER_H_
#define CRUCIBLE_TESTS_EXECUTOR_SCRIPTED_SERVER_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace executor_testing {

// An HTTP/1.1 server on 127.0.0.1:0 that answers each request with
// respond(request line) and records the request lines: a stand-in engine
// for tests of error mapping, and a witness that no engine call was made.
// With `concurrent`, each connection gets its own thread, so `respond` may
// block (a streaming call held open) while other requests are answered;
// whatever it waits for must be released before the server is destroyed.
// Thread-safe.
class ScriptedServer {
 public:
  explicit ScriptedServer(
      std::function<std::string(const std::string&)> respond,
      bool concurrent = false);
  ~ScriptedServer();
  std::string address() const;  // tcp://127.0.0.1:PORT
  std::vector<std::string> requests();

 private:
  void Serve();
  void Answer(int connection);

  std::function<std::string(const std::string&)> respond_;
  int fd_ = -1;
  int port_ = 0;
  const bool concurrent_;
  std::thread thread_;
  std::vector<std::thread> connections_;  // only touched by thread_
  absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

// An HTTP response with a JSON content type and `body`.
std::string Http(int code, const std::string& body);

}  // namespace executor_testing

#endif  // CRUCIBLE_TESTS_EXECUTOR_SCRIPTED_SERVER_H_
