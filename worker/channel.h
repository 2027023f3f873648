#ifndef CRUCIBLE_WORKER_CHANNEL_H_
#define CRUCIBLE_WORKER_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace worker {

// How every channel of the worker (to the server, to each executor) finds
// a dead peer and comes back, possibly at another address.
struct ChannelOptions {
  // A keepalive ping is sent after this long without one (--keepalive_time),
  // with or without calls in flight...
  absl::Duration keepalive_time = absl::Seconds(15);
  // ...and a ping not answered within this (--keepalive_timeout) closes the
  // connection; the next call reconnects, re-resolving the name.
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Delay before the channel's first reconnection attempt...
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(200);
  // ...growing up to this (gRPC's default grows to 2 min), so a restarted
  // peer is found within about this of its start.
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
  // A DNS name is resolved again at most this often (gRPC's default: 30 s),
  // so a peer that came back with a new IP is found at the first reconnect.
  absl::Duration min_time_between_resolutions = absl::Seconds(1);
  // Transport security (common::MakeChannelCredentials); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // With TLS: the name the peer's certificate must carry; empty: the host
  // of the address dialled.
  std::string tls_name;
};

// The shortest keepalive_time accepted: twice the interval below which
// Crucible's servers answer pings with GOAWAY ENHANCE_YOUR_CALM
// (common::kMinClientPingInterval).
absl::Duration MinKeepaliveTime();

// INVALID_ARGUMENT (naming the worker's flag) unless keepalive_time is at
// least MinKeepaliveTime() and the other durations are positive.
absl::Status ValidateChannelOptions(const ChannelOptions& options);

// The channel arguments of every worker channel.
grpc::ChannelArguments WorkerChannelArgs(const ChannelOptions& options);

// A channel to `address` (host:port, a DNS name or an IP) with
// WorkerChannelArgs and options.credentials (plaintext if null).
std::shared_ptr<grpc::Channel> MakeWorkerChannel(const std::string& address,
                                                 const ChannelOptions& options);

}  // namespace worker

#endif  // CRUCIBLE_WORKER_CHANNEL_H_
