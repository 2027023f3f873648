#include "executor/runner/tar.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace runner {
namespace {

constexpr size_t kBlock = 512;

void Octal(char* field, size_t width, uint64_t value) {
  // width-1 digits and a NUL.
  std::string s = absl::StrFormat("%0*o", static_cast<int>(width - 1), value);
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = '\0';
}

absl::Status Header(std::string& out, absl::string_view path, char type,
                    uint32_t mode, uint64_t size, uint32_t uid, uint32_t gid) {
  char h[kBlock];
  std::memset(h, 0, sizeof(h));
  absl::string_view name = path, prefix;
  if (name.size() > 100) {
    // Split at a '/' so that the name holds at most 100 bytes and the
    // prefix at most 155.
    size_t cut = absl::string_view::npos;
    for (size_t i = 0; i < path.size() && i <= 155; ++i) {
      if (path[i] == '/' && path.size() - i - 1 <= 100) {
        cut = i;
        break;
      }
    }
    if (cut == absl::string_view::npos || cut == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("path \"", path, "\" does not fit a ustar header"));
    }
    prefix = path.substr(0, cut);
    name = path.substr(cut + 1);
  }
  std::memcpy(h, name.data(), name.size());
  Octal(h + 100, 8, mode);
  Octal(h + 108, 8, uid);
  Octal(h + 116, 8, gid);
  Octal(h + 124, 12, size);
  Octal(h + 136, 12, 0);  // mtime
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), prefix.size());
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  Octal(h + 148, 7, sum);
  h[155] = ' ';
  out.append(h, kBlock);
  return absl::OkStatus();
}

// A NUL- or space-terminated octal field.
bool ParseOctal(absl::string_view field, int64_t& out) {
  field = absl::StripAsciiWhitespace(field.substr(0, field.find('\0')));
  out = 0;
  for (char c : field) {
    if (c < '0' || c > '7') return false;
    out = out * 8 + (c - '0');
    if (out > (int64_t{1} << 40)) return false;
  }
  return true;
}

// An octal field read so that every tar reader agrees on its value: one
// or more digits from its first byte, then only NULs and spaces.
bool ParseStrictOctal(absl::string_view field, int64_t& out) {
  size_t digits = 0;
  while (digits < field.size() && field[digits] >= '0' &&
         field[digits] <= '7') {
    ++digits;
  }
  if (digits == 0 || digits > 13) return false;
  for (char c : field.substr(digits)) {
    if (c != '\0' && c != ' ') return false;
  }
  return ParseOctal(field.substr(0, digits), out);
}

std::string CString(const char* p, size_t n) {
  return std::string(p, strnlen(p, n));
}

}  // namespace

absl::StatusOr<std::string> BuildTar(const std::vector<TarFile>& files,
                                     uint32_t uid, uint32_t gid) {
  std::string out;
  std::set<std::string> dirs;
  for (const TarFile& f : files) {
    for (size_t slash = f.path.find('/'); slash != std::string::npos;
         slash = f.path.find('/', slash + 1)) {
      const std::string dir = f.path.substr(0, slash);
      if (dirs.insert(dir).second) {
        absl::Status s = Header(out, dir + "/", '5', 0755, 0, uid, gid);
        if (!s.ok()) return s;
      }
    }
    absl::Status s =
        Header(out, f.path, '0', f.mode, f.content.size(), uid, gid);
    if (!s.ok()) return s;
    out.append(f.content);
    out.append((kBlock - f.content.size() % kBlock) % kBlock, '\0');
  }
  out.append(2 * kBlock, '\0');
  return out;
}

TarReader::TarReader(std::function<bool(const TarEntry&)> on_entry,
                     std::function<void(absl::string_view)> on_content,
                     std::function<void()> on_end)
    : on_entry_(std::move(on_entry)),
      on_content_(std::move(on_content)),
      on_end_(std::move(on_end)) {}

absl::Status TarReader::Feed(absl::string_view bytes) {
  while (!bytes.empty() && state_ != State::kEnd) {
    switch (state_) {
      case State::kHeader: {
        const size_t take = std::min(bytes.size(), kBlock - header_.size());
        header_.append(bytes.data(), take);
        bytes.remove_prefix(take);
        if (header_.size() == kBlock) {
          absl::Status s = OnHeader();
          header_.clear();
          if (!s.ok()) {
            state_ = State::kEnd;
            return s;
          }
        }
        break;
      }
      case State::kContent:
      case State::kMeta: {
        const size_t take =
            static_cast<size_t>(std::min<int64_t>(bytes.size(), left_));
        if (state_ == State::kMeta) {
          meta_.append(bytes.data(), take);
        } else if (wanted_ && take > 0) {
          on_content_(bytes.substr(0, take));
        }
        bytes.remove_prefix(take);
        left_ -= static_cast<int64_t>(take);
        if (left_ > 0) break;
        if (state_ == State::kContent) {
          if (wanted_) on_end_();
        } else if (meta_type_ == 'L') {
          long_name_ = meta_.substr(0, meta_.find('\0'));
        } else {
          // Records "LEN key=value\n".
          absl::string_view data = meta_;
          while (!data.empty()) {
            const size_t sp = data.find(' ');
            int64_t len = 0;
            if (sp == absl::string_view::npos ||
                !absl::SimpleAtoi(data.substr(0, sp), &len) ||
                len <= static_cast<int64_t>(sp) + 1 ||
                static_cast<size_t>(len) > data.size()) {
              state_ = State::kEnd;
              return absl::InvalidArgumentError("tar: malformed PAX record");
            }
            absl::string_view rec = data.substr(sp + 1, len - sp - 2);
            if (meta_type_ == 'x' && absl::ConsumePrefix(&rec, "path=")) {
              long_name_ = std::string(rec);
            }
            data.remove_prefix(len);
          }
        }
        meta_.clear();
        state_ = padding_ > 0 ? State::kPadding : State::kHeader;
        break;
      }
      case State::kPadding: {
        const size_t take =
            static_cast<size_t>(std::min<int64_t>(bytes.size(), padding_));
        bytes.remove_prefix(take);
        padding_ -= static_cast<int64_t>(take);
        if (padding_ == 0) state_ = State::kHeader;
        break;
      }
      case State::kEnd:
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status TarReader::OnHeader() {
  const char* h = header_.data();
  if (std::all_of(h, h + kBlock, [](char c) { return c == '\0'; })) {
    state_ = State::kEnd;
    return absl::OkStatus();
  }
  int64_t size = 0;
  if (!ParseOctal(absl::string_view(h + 124, 12), size)) {
    return absl::InvalidArgumentError("tar: malformed size field");
  }
  const char type = h[156] == '\0' ? '0' : h[156];
  left_ = size;
  padding_ = (kBlock - size % kBlock) % kBlock;
  if (type == 'L' || type == 'x' || type == 'g') {
    // Metadata of the next entry: held, but never much of it.
    if (size > (1 << 20)) {
      return absl::InvalidArgumentError("tar: metadata record over 1 MiB");
    }
    meta_type_ = type;
    state_ = State::kMeta;  // an empty one ends with the next bytes
    return absl::OkStatus();
  }
  TarEntry e;
  if (!long_name_.empty()) {
    e.path = std::move(long_name_);
    long_name_.clear();
  } else {
    std::string prefix = CString(h + 345, 155);
    std::string name = CString(h, 100);
    e.path = prefix.empty() ? name : absl::StrCat(prefix, "/", name);
  }
  while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
  e.type = (type == '0' || type == '7') ? '0' : type;
  e.size = size;
  int64_t mode = 0;
  if (ParseOctal(absl::string_view(h + 100, 8), mode)) {
    e.mode = static_cast<uint32_t>(mode);
  }
  wanted_ = on_entry_(e) && e.type == '0';
  state_ = State::kContent;
  if (left_ == 0) {
    if (wanted_) on_end_();
    state_ = padding_ > 0 ? State::kPadding : State::kHeader;
  }
  return absl::OkStatus();
}

absl::Status TarReader::Finish() const {
  if ((state_ == State::kContent || state_ == State::kMeta) && left_ > 0) {
    return absl::InvalidArgumentError("tar: truncated entry");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TarEntry>> ParseTar(absl::string_view archive) {
  std::vector<TarEntry> entries;
  TarReader reader(
      [&entries](const TarEntry& e) {
        entries.push_back(e);
        return true;
      },
      [&entries](absl::string_view bytes) {
        entries.back().content.append(bytes.data(), bytes.size());
      },
      [] {});
  if (absl::Status s = reader.Feed(archive); !s.ok()) return s;
  if (absl::Status s = reader.Finish(); !s.ok()) return s;
  return entries;
}

absl::StatusOr<std::vector<TarEntry>> ParsePlainUstar(
    absl::string_view archive) {
  auto zero = [](absl::string_view bytes) {
    return std::all_of(bytes.begin(), bytes.end(),
                       [](char c) { return c == '\0'; });
  };
  std::vector<TarEntry> entries;
  size_t pos = 0;
  while (true) {
    if (pos + kBlock > archive.size()) {
      return absl::InvalidArgumentError("tar: no end-of-archive block");
    }
    const absl::string_view header = archive.substr(pos, kBlock);
    if (zero(header)) {
      if (!zero(archive.substr(pos))) {
        return absl::InvalidArgumentError(
            "tar: bytes after the end-of-archive block");
      }
      return entries;
    }
    const char* h = header.data();
    if (std::memcmp(h + 257, "ustar\0", 6) != 0 ||
        std::memcmp(h + 263, "00", 2) != 0) {
      return absl::InvalidArgumentError("tar: not a plain ustar header");
    }
    int64_t checksum = 0, size = 0, mode = 0;
    if (!ParseStrictOctal(header.substr(148, 8), checksum) ||
        !ParseStrictOctal(header.substr(124, 12), size) ||
        !ParseStrictOctal(header.substr(100, 8), mode)) {
      return absl::InvalidArgumentError("tar: malformed numeric field");
    }
    int64_t sum = 0;
    for (size_t i = 0; i < kBlock; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    }
    if (sum != checksum) {
      return absl::InvalidArgumentError("tar: header checksum mismatch");
    }
    const char type = h[156];
    if (type != '0' && type != '5') {
      return absl::InvalidArgumentError(absl::StrCat(
          "tar: an entry of type '", absl::CHexEscape(std::string(1, type)),
          "' (only regular files '0' and directories '5')"));
    }
    if (type == '5' && size != 0) {
      return absl::InvalidArgumentError("tar: a directory with content");
    }
    pos += kBlock;
    if (pos + static_cast<size_t>(size) > archive.size()) {
      return absl::InvalidArgumentError("tar: truncated entry");
    }
    TarEntry e;
    const std::string prefix = CString(h + 345, 155);
    const std::string name = CString(h, 100);
    e.path = prefix.empty() ? name : absl::StrCat(prefix, "/", name);
    if (type == '5' && !e.path.empty() && e.path.back() == '/') {
      e.path.pop_back();
    }
    e.type = type;
    e.size = size;
    e.mode = static_cast<uint32_t>(mode);
    if (type == '0') e.content = std::string(archive.substr(pos, size));
    pos += (static_cast<size_t>(size) + kBlock - 1) / kBlock * kBlock;
    entries.push_back(std::move(e));
  }
}

}  // namespace runner
