#ifndef CRUCIBLE_TESTS_DOCS_TRANSCRIPT_H_
#define CRUCIBLE_TESTS_DOCS_TRANSCRIPT_H_

#include <string>
#include <vector>

namespace docs_testing {

// One command of a ```console block: "$ cmd" (with the lines that continue
// it: after a line ending in "\", or written after bash's "> " prompt) and
// the output lines written under it.
struct Step {
  std::string command;
  std::vector<std::string> expected;
  int line = 0;  // where the command starts in the file, for messages
};

// The steps of every ```console block in a Markdown file, in order.
std::vector<Step> ParseConsoleBlocks(const std::string& markdown);

// A bash script that runs the steps in order and frames each one's output
// (stdout and stderr together) and exit status with markers ParseRun reads.
std::string BuildScript(const std::vector<Step>& steps);

// What one step printed and how it exited, as framed by BuildScript.
struct Ran {
  std::string output;
  int exit_code = -1;
};

// Splits the script's output into one Ran per step that ran.
std::vector<Ran> ParseRun(const std::string& output);

// Whether `actual` (lines) matches the `expected` patterns: a pattern line
// "..." matches any number of lines (none included); "..." inside a line
// matches any characters; everything else must be equal.
bool OutputMatches(const std::vector<std::string>& expected,
                   const std::string& actual);

}  // namespace docs_testing

#endif  // CRUCIBLE_TESTS_DOCS_TRANSCRIPT_H_
