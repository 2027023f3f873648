#include "worker/channel.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/tls.h"

namespace worker {
namespace {

int Millis(absl::Duration d) {
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

}  // namespace

absl::Duration MinKeepaliveTime() { return 2 * common::kMinClientPingInterval; }

absl::Status ValidateChannelOptions(const ChannelOptions& options) {
  if (options.keepalive_time < MinKeepaliveTime()) {
    // The servers would count the pings as abuse and cut the connection.
    return absl::InvalidArgumentError(
        absl::StrCat("--keepalive_time: must be at least ",
                     absl::FormatDuration(MinKeepaliveTime())));
  }
  if (options.keepalive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--keepalive_timeout: must be positive");
  }
  if (options.initial_reconnect_backoff <= absl::ZeroDuration() ||
      options.max_reconnect_backoff <= absl::ZeroDuration() ||
      options.min_time_between_resolutions <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "reconnect and resolution delays must be positive");
  }
  return absl::OkStatus();
}

grpc::ChannelArguments WorkerChannelArgs(const ChannelOptions& options) {
  grpc::ChannelArguments args;
  // Without keepalives a peer that vanished (a pod gone with its IP) is
  // noticed only when TCP gives up, minutes later: calls time out one by
  // one on the dead connection meanwhile. A ping unanswered within the
  // timeout closes it, and the reconnection resolves the name again.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(options.keepalive_time));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(options.keepalive_timeout));
  // Idle connections too (an executor with no run, a quiet server stream).
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // 0: no limit on pings between data frames (gRPC's default, 2, stops the
  // pings of an idle connection after two). The servers admit them
  // (common/grpc_server.cc).
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              Millis(options.initial_reconnect_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              Millis(options.max_reconnect_backoff));
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS,
              Millis(options.min_time_between_resolutions));
  return args;
}

std::shared_ptr<grpc::Channel> MakeWorkerChannel(
    const std::string& address, const ChannelOptions& options) {
  grpc::ChannelArguments args = WorkerChannelArgs(options);
  common::SetTlsTargetName(args, options.tls_name);
  common::RouteToServingServer(address, args);
  return grpc::CreateCustomChannel(address,
                                   options.credentials != nullptr
                                       ? options.credentials
                                       : grpc::InsecureChannelCredentials(),
                                   args);
}

}  // namespace worker
