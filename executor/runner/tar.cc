#include "executor/runner/tar.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
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

absl::StatusOr<std::vector<TarEntry>> ParseTar(absl::string_view archive) {
  std::vector<TarEntry> entries;
  std::string long_name;
  size_t pos = 0;
  while (pos + kBlock <= archive.size()) {
    const char* h = archive.data() + pos;
    if (std::all_of(h, h + kBlock, [](char c) { return c == '\0'; })) break;
    int64_t size = 0;
    if (!ParseOctal(absl::string_view(h + 124, 12), size)) {
      return absl::InvalidArgumentError("tar: malformed size field");
    }
    const char type = h[156] == '\0' ? '0' : h[156];
    pos += kBlock;
    if (pos + static_cast<size_t>(size) > archive.size()) {
      return absl::InvalidArgumentError("tar: truncated entry");
    }
    absl::string_view data = archive.substr(pos, static_cast<size_t>(size));
    pos += (static_cast<size_t>(size) + kBlock - 1) / kBlock * kBlock;
    if (type == 'L') {
      long_name = std::string(data.substr(0, data.find('\0')));
      continue;
    }
    if (type == 'x' || type == 'g') {
      // Records "LEN key=value\n".
      while (!data.empty()) {
        size_t sp = data.find(' ');
        int64_t len = 0;
        if (sp == absl::string_view::npos ||
            !absl::SimpleAtoi(data.substr(0, sp), &len) || len <= 0 ||
            static_cast<size_t>(len) > data.size()) {
          return absl::InvalidArgumentError("tar: malformed PAX record");
        }
        absl::string_view rec = data.substr(sp + 1, len - sp - 2);
        if (type == 'x' && absl::ConsumePrefix(&rec, "path=")) {
          long_name = std::string(rec);
        }
        data.remove_prefix(len);
      }
      continue;
    }
    TarEntry e;
    if (!long_name.empty()) {
      e.path = std::move(long_name);
      long_name.clear();
    } else {
      std::string prefix = CString(h + 345, 155);
      std::string name = CString(h, 100);
      e.path = prefix.empty() ? name : absl::StrCat(prefix, "/", name);
    }
    while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
    e.type = type;
    e.size = size;
    if (type == '0' || type == '7') {
      e.type = '0';
      e.content = std::string(data);
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace runner
