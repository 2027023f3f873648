#include "executor/docker/demux.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace docker {

bool Demuxer::Feed(absl::string_view bytes, std::vector<Frame>& out) {
  if (failed()) return false;
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      // Collecting a header.
      size_t take = std::min(bytes.size(), header_.size() - header_len_);
      std::copy_n(bytes.begin(), take, header_.begin() + header_len_);
      header_len_ += take;
      bytes.remove_prefix(take);
      if (header_len_ < header_.size()) return true;
      header_len_ = 0;
      if (header_[0] > 2 || header_[1] != 0 || header_[2] != 0 ||
          header_[3] != 0) {
        error_ = absl::StrCat("bad multiplexed-stream header: stream byte ",
                              header_[0], ", padding ", header_[1], " ",
                              header_[2], " ", header_[3]);
        return false;
      }
      stream_ = static_cast<StreamId>(header_[0]);
      remaining_ = (uint32_t{header_[4]} << 24) | (uint32_t{header_[5]} << 16) |
                   (uint32_t{header_[6]} << 8) | uint32_t{header_[7]};
      continue;  // a zero-length frame is simply skipped
    }
    size_t take = std::min<size_t>(bytes.size(), remaining_);
    out.push_back(Frame{stream_, std::string(bytes.substr(0, take))});
    remaining_ -= static_cast<uint32_t>(take);
    bytes.remove_prefix(take);
  }
  return true;
}

}  // namespace docker
