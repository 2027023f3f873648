#ifndef CRUCIBLE_CLI_OUTPUT_H_
#define CRUCIBLE_CLI_OUTPUT_H_

#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace cli {

// The one writer of the CLI's stdout and stderr, so that a status line on a
// terminal (see SetStatus) never mixes with output: it is erased before any
// write and drawn again after one that ends a line. Every write is flushed.
// Thread-safe.
class Output {
 public:
  // `status_line`: whether SetStatus draws anything (stderr is a terminal).
  Output(FILE* out, FILE* err, bool status_line)
      : out_(out), err_(err), status_enabled_(status_line) {}

  void Out(absl::string_view data);
  void Err(absl::string_view data);
  // Shows `line` as the status line (replacing the previous one); empty
  // erases it. No-op unless enabled.
  void SetStatus(std::string line);

 private:
  void Write(FILE* f, absl::string_view data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrawLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FILE* const out_;
  FILE* const err_;
  const bool status_enabled_;
  absl::Mutex mu_;
  std::string status_ ABSL_GUARDED_BY(mu_);
  bool status_shown_ ABSL_GUARDED_BY(mu_) = false;
  bool at_line_start_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_OUTPUT_H_
