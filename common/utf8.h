#ifndef CRUCIBLE_COMMON_UTF8_H_
#define CRUCIBLE_COMMON_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

// Well-formed UTF-8, as proto3 string fields must hold it (a message with
// one bad byte in a string does not parse).
namespace common {

// Length of the well-formed UTF-8 sequence at the start of `s` (no
// overlong form, no surrogate, nothing above U+10FFFF), or 0 if there is
// none (or `s` is empty).
size_t Utf8SequenceLength(absl::string_view s);

// True if all of `s` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view s);

}  // namespace common

#endif  // CRUCIBLE_COMMON_UTF8_H_
