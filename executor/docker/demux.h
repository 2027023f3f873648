#ifndef CRUCIBLE_EXECUTOR_DOCKER_DEMUX_H_
#define CRUCIBLE_EXECUTOR_DOCKER_DEMUX_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace docker {

// Stream ids of the Docker multiplexed stream format.
enum class StreamId : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2 };

// One demultiplexed piece of payload. A frame of the wire format may be
// delivered as several pieces when its bytes arrive in several Feed calls.
struct Frame {
  StreamId stream;
  std::string data;
  friend bool operator==(const Frame& a, const Frame& b) {
    return a.stream == b.stream && a.data == b.data;
  }
};

// Incremental demultiplexer of the Docker "multiplexed stream" format used by
// /containers/{id}/logs and /attach when the container has no TTY: each frame
// is an 8-byte header (stream byte, 3 zero bytes, big-endian uint32 length)
// followed by `length` payload bytes.
//
// Pure: no I/O, no clock; feed it bytes split anywhere. Confined to one
// thread (no internal locking).
class Demuxer {
 public:
  // Consumes `bytes` and appends the payload bytes they complete to `out`
  // (payload is emitted as soon as it arrives, not only once a frame is
  // whole; empty pieces are never emitted). Returns false, and consumes
  // nothing more from then on, if a header names an unknown stream id or has
  // non-zero padding; error() then describes it.
  bool Feed(absl::string_view bytes, std::vector<Frame>& out);

  // True if the input so far ended exactly at a frame boundary.
  bool AtFrameBoundary() const { return header_len_ == 0 && remaining_ == 0; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::array<uint8_t, 8> header_{};
  size_t header_len_ = 0;   // bytes of the current header seen so far
  uint32_t remaining_ = 0;  // payload bytes of the current frame still due
  StreamId stream_ = StreamId::kStdout;
  std::string error_;
};

}  // namespace docker

#endif  // CRUCIBLE_EXECUTOR_DOCKER_DEMUX_H_
