#include "common/image_reference.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace common {
namespace {

constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxTagBytes = 128;
constexpr size_t kMinDigestHex = 32;

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a valid image reference: ", why));
}

bool LowerAlnum(char c) {
  return absl::ascii_islower(c) || absl::ascii_isdigit(c);
}
bool Alnum(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c));
}
bool Word(char c) { return Alnum(c) || c == '_'; }

// [a-z0-9]+ ( ("." | "_" | "__" | "-"+) [a-z0-9]+ )*
bool PathComponent(absl::string_view s) {
  size_t i = 0;
  while (true) {
    const size_t start = i;
    while (i < s.size() && LowerAlnum(s[i])) ++i;
    if (i == start) return false;  // empty, or a separator where a run must be
    if (i == s.size()) return true;
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
  }
}

// [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool DomainComponent(absl::string_view s) {
  if (s.empty() || !Alnum(s.front()) || !Alnum(s.back())) return false;
  for (char c : s) {
    if (!Alnum(c) && c != '-') return false;
  }
  return true;
}

// host [":" port], host a dotted name or a bracketed IPv6 address.
bool Domain(absl::string_view s) {
  absl::string_view host = s;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == absl::string_view::npos || close < 3) return false;
    for (char c : s.substr(1, close - 1)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':')
        return false;
    }
    host = {};
    s.remove_prefix(close + 1);
  } else {
    const size_t colon = s.find(':');
    host = s.substr(0, colon);
    s.remove_prefix(colon == absl::string_view::npos ? s.size() : colon);
    for (absl::string_view part : absl::StrSplit(host, '.')) {
      if (!DomainComponent(part)) return false;
    }
  }
  if (s.empty()) return true;
  if (s.front() != ':' || s.size() == 1) return false;
  for (char c : s.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// algorithm ":" hex{32,}
bool Digest(absl::string_view s) {
  const size_t colon = s.find(':');
  if (colon == absl::string_view::npos) return false;
  const absl::string_view algorithm = s.substr(0, colon);
  const absl::string_view hex = s.substr(colon + 1);
  if (hex.size() < kMinDigestHex) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  // Components [A-Za-z][A-Za-z0-9]* joined by one of "+._-".
  bool expect_letter = true;
  for (char c : algorithm) {
    if (expect_letter) {
      if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) return false;
      expect_letter = false;
    } else if (c == '+' || c == '.' || c == '_' || c == '-') {
      expect_letter = true;
    } else if (!Alnum(c)) {
      return false;
    }
  }
  return !algorithm.empty() && !expect_letter;
}

// [\w][\w.-]{0,127}
bool Tag(absl::string_view s) {
  if (s.empty() || s.size() > kMaxTagBytes || !Word(s.front())) return false;
  for (char c : s) {
    if (!Word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateImageReference(absl::string_view reference) {
  if (reference.empty()) return Invalid("empty");
  absl::string_view name = reference;
  if (const size_t at = name.find('@'); at != absl::string_view::npos) {
    if (!Digest(name.substr(at + 1))) {
      return Invalid(
          "the digest after '@' must be an algorithm, ':' and at least 32 "
          "hex digits (e.g. sha256:...)");
    }
    name = name.substr(0, at);
  }
  // A ':' after the last '/' starts the tag; one before it is a port.
  const size_t slash = name.rfind('/');
  const size_t colon = name.rfind(':');
  if (colon != absl::string_view::npos &&
      (slash == absl::string_view::npos || colon > slash)) {
    if (!Tag(name.substr(colon + 1))) {
      return Invalid(
          "the tag after ':' must be 1-128 characters of [A-Za-z0-9_.-], "
          "not starting with '.' or '-'");
    }
    name = name.substr(0, colon);
  }
  if (name.empty()) return Invalid("no repository name");
  if (name.size() > kMaxNameBytes) {
    return Invalid(
        absl::StrCat("the name is longer than ", kMaxNameBytes, " bytes"));
  }
  std::vector<absl::string_view> components = absl::StrSplit(name, '/');
  for (size_t i = 0; i < components.size(); ++i) {
    const absl::string_view c = components[i];
    // The first of several components may be a registry (host[:port]).
    if (i == 0 && components.size() > 1 && Domain(c)) continue;
    if (!PathComponent(c)) {
      return Invalid(
          "each part of the repository path must be lowercase letters and "
          "digits, separated by '.', '_', '__' or '-' (a registry host, "
          "with an optional :port, may come first)");
    }
  }
  return absl::OkStatus();
}

}  // namespace common
