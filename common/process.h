#ifndef CRUCIBLE_COMMON_PROCESS_H_
#define CRUCIBLE_COMMON_PROCESS_H_

#include <initializer_list>

#include "absl/strings/string_view.h"

// What every binary's main() does the same way: signals, logging, flags.
namespace common {

// Blocks SIGTERM and SIGINT, and the signals in `also`, in the calling
// thread and every thread it starts afterwards, so that WaitForStopSignal
// can take them. Call first in main(). `also` is for a process whose image
// names another stop signal (STOPSIGNAL) for a process beside it.
void BlockStopSignals(std::initializer_list<int> also = {});

// Waits for SIGTERM, SIGINT or one of `also` (blocked by BlockStopSignals)
// and returns its number.
int WaitForStopSignal(std::initializer_list<int> also = {});

// Asks this process to stop as a SIGTERM would (WaitForStopSignal returns
// it), for a library that finds the process cannot go on.
void RequestStop();

// Initialises glog for a binary: logs to stderr unless GLOG_log_dir is set.
void InitLogging(const char* argv0);

// Parses the command line (absl flags) with `usage` as the text `--help`
// starts with. `--help` lists every flag the binary defines (absl's default
// lists only those of a source file named like the binary).
void ParseFlags(int argc, char** argv, absl::string_view usage);

}  // namespace common

#endif  // CRUCIBLE_COMMON_PROCESS_H_
