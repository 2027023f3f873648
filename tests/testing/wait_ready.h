#ifndef CRUCIBLE_TESTS_TESTING_WAIT_READY_H_
#define CRUCIBLE_TESTS_TESTING_WAIT_READY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace testing_util {

// Waits until the process on 127.0.0.1:`port` reports "" SERVING (ready) on
// grpc.health.v1.Health/Check; DEADLINE_EXCEEDED naming `name` otherwise.
// A worker is ready once it has its stream to the server and an executor in
// rotation, so tasks submitted after this are not refused for want of one.
absl::Status WaitReady(const std::string& name, int port,
                       absl::Duration timeout);

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_WAIT_READY_H_
