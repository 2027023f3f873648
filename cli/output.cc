#include "cli/output.h"

namespace cli {

void Output::Out(absl::string_view data) {
  absl::MutexLock lock(&mu_);
  Write(out_, data);
}

void Output::Err(absl::string_view data) {
  absl::MutexLock lock(&mu_);
  Write(err_, data);
}

void Output::SetStatus(std::string line) {
  if (!status_enabled_) return;
  absl::MutexLock lock(&mu_);
  EraseLocked();
  status_ = std::move(line);
  DrawLocked();
}

void Output::Write(FILE* f, absl::string_view data) {
  if (data.empty()) return;
  EraseLocked();
  fwrite(data.data(), 1, data.size(), f);
  fflush(f);
  at_line_start_ = data.back() == '\n';
  DrawLocked();
}

void Output::EraseLocked() {
  if (!status_shown_) return;
  // Back to the start of the line and clear it (ANSI EL).
  fputs("\r\033[K", err_);
  fflush(err_);
  status_shown_ = false;
}

void Output::DrawLocked() {
  // Drawn only at the start of a line: a task's partial line stays intact.
  if (!status_enabled_ || status_.empty() || !at_line_start_) return;
  fputs(status_.c_str(), err_);
  fflush(err_);
  status_shown_ = true;
}

}  // namespace cli
