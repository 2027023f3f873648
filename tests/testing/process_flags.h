#ifndef CRUCIBLE_TESTS_TESTING_PROCESS_FLAGS_H_
#define CRUCIBLE_TESTS_TESTING_PROCESS_FLAGS_H_

#include <string>
#include <vector>

namespace testing_util {

// The flags every crucible-server, crucible-worker and crucible-executor
// that a test starts on loopback gets, next to its own: plaintext, asked
// for explicitly (--insecure), and for the server, calls without
// credentials as tenant "default" (--allow_anonymous). The one place per
// process kind for a flag that every test process needs; tests of TLS itself
// pass their own.
std::vector<std::string> ServerTestFlags();
std::vector<std::string> WorkerTestFlags();
std::vector<std::string> ExecutorTestFlags();

// The flags above for `binary` (a path or a name ending in crucible-server,
// crucible-worker or crucible-executor); none for another binary.
std::vector<std::string> TestFlagsFor(const std::string& binary);

// `args` (argv, the binary first) with TestFlagsFor(args[0]) appended.
std::vector<std::string> WithTestFlags(std::vector<std::string> args);

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_PROCESS_FLAGS_H_
