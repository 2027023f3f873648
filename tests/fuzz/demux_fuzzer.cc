// libFuzzer target of docker::Demuxer, the parser of the engine's
// multiplexed log stream: the bytes come from the engine (or whatever
// answers at --docker_host), so they are untrusted.
//
// Checks, for any input and any way of splitting it into Feed calls:
// no crash or sanitizer report; the result equals a whole-buffer reference
// parser (same payload per stream, same failure point); payload never
// exceeds the input; no empty piece is emitted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "executor/docker/demux.h"

namespace {

struct Parsed {
  std::string out, err;  // payload by stream (stdin frames: `in`)
  std::string in;
  bool failed = false;
  bool at_boundary = true;
};

// Reference: the format as documented, over the whole buffer at once.
Parsed Reference(absl::string_view b) {
  Parsed p;
  size_t i = 0;
  while (i < b.size()) {
    if (b.size() - i < 8) {
      p.at_boundary = false;
      return p;
    }
    const auto* h = reinterpret_cast<const uint8_t*>(b.data() + i);
    if (h[0] > 2 || h[1] != 0 || h[2] != 0 || h[3] != 0) {
      p.failed = true;
      return p;
    }
    size_t len = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) |
                 (size_t{h[6]} << 8) | h[7];
    i += 8;
    size_t take = std::min(len, b.size() - i);
    std::string& dst = h[0] == 0 ? p.in : h[0] == 1 ? p.out : p.err;
    dst.append(b.data() + i, take);
    i += take;
    if (take < len) p.at_boundary = false;
  }
  return p;
}

Parsed Incremental(absl::string_view b, absl::string_view cuts) {
  docker::Demuxer d;
  Parsed p;
  size_t cut = 0;
  while (!b.empty()) {
    size_t n = b.size();
    if (cut < cuts.size())
      n = std::min(n,
                   static_cast<size_t>(static_cast<uint8_t>(cuts[cut++])) + 1);
    std::vector<docker::Frame> frames;
    bool ok = d.Feed(b.substr(0, n), frames);
    for (const docker::Frame& f : frames) {
      if (f.data.empty()) abort();  // empty pieces are never emitted
      std::string& dst = f.stream == docker::StreamId::kStdin    ? p.in
                         : f.stream == docker::StreamId::kStdout ? p.out
                                                                 : p.err;
      dst += f.data;
    }
    if (!ok) {
      if (!d.failed()) abort();
      p.failed = true;
      return p;
    }
    b.remove_prefix(n);
  }
  p.at_boundary = d.AtFrameBoundary();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte says how many of the next bytes are split points.
  if (size == 0) return 0;
  size_t ncuts = std::min<size_t>(data[0] % 16, size - 1);
  absl::string_view cuts(reinterpret_cast<const char*>(data + 1), ncuts);
  absl::string_view stream(reinterpret_cast<const char*>(data + 1 + ncuts),
                           size - 1 - ncuts);
  Parsed want = Reference(stream);
  Parsed whole = Incremental(stream, "");
  Parsed split = Incremental(stream, cuts);
  for (const Parsed* got : {&whole, &split}) {
    if (got->failed != want.failed || got->out != want.out ||
        got->err != want.err || got->in != want.in) {
      abort();
    }
    if (!want.failed && got->at_boundary != want.at_boundary) abort();
    if (got->out.size() + got->err.size() + got->in.size() > stream.size())
      abort();
  }
  return 0;
}
