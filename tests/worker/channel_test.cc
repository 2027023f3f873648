// The arguments every worker channel is built with (worker/channel.h):
// keepalives on, also without calls, that Crucible's servers admit; capped
// reconnection; quick re-resolution.
#include "worker/channel.h"

#include <grpc/grpc.h>

#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/grpc_server.h"
#include "gtest/gtest.h"

namespace worker {
namespace {

// The integer arguments of `args`, by key.
std::map<std::string, int> IntArgs(const grpc::ChannelArguments& args) {
  grpc_channel_args c_args;
  args.SetChannelArgs(&c_args);
  std::map<std::string, int> out;
  for (size_t i = 0; i < c_args.num_args; ++i) {
    if (c_args.args[i].type == GRPC_ARG_INTEGER) {
      out[c_args.args[i].key] = c_args.args[i].value.integer;
    }
  }
  return out;
}

TEST(WorkerChannelArgsTest, DefaultsSetKeepalivesReconnectionAndResolution) {
  const std::map<std::string, int> args =
      IntArgs(WorkerChannelArgs(ChannelOptions{}));
  EXPECT_EQ(args.at(GRPC_ARG_KEEPALIVE_TIME_MS), 15000);
  EXPECT_EQ(args.at(GRPC_ARG_KEEPALIVE_TIMEOUT_MS), 10000);
  EXPECT_EQ(args.at(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS), 1);
  EXPECT_EQ(args.at(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA), 0);  // no limit
  EXPECT_EQ(args.at(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS), 200);
  EXPECT_EQ(args.at(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 2000);
  EXPECT_EQ(args.at(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS), 1000);
}

TEST(WorkerChannelArgsTest, OptionsReachTheArgs) {
  ChannelOptions options;
  options.keepalive_time = absl::Seconds(42);
  options.keepalive_timeout = absl::Seconds(7);
  options.max_reconnect_backoff = absl::Seconds(3);
  const std::map<std::string, int> args = IntArgs(WorkerChannelArgs(options));
  EXPECT_EQ(args.at(GRPC_ARG_KEEPALIVE_TIME_MS), 42000);
  EXPECT_EQ(args.at(GRPC_ARG_KEEPALIVE_TIMEOUT_MS), 7000);
  EXPECT_EQ(args.at(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 3000);
}

TEST(WorkerChannelArgsTest, DefaultKeepaliveIsOneTheServersAdmit) {
  // Servers answer pings closer than kMinClientPingInterval with GOAWAY;
  // the worker keeps a margin of twice that.
  EXPECT_GE(ChannelOptions{}.keepalive_time,
            2 * common::kMinClientPingInterval);
  EXPECT_TRUE(ValidateChannelOptions(ChannelOptions{}).ok());
}

TEST(WorkerChannelArgsTest, KeepaliveMoreOftenThanServersAdmitIsRefused) {
  ChannelOptions options;
  options.keepalive_time = common::kMinClientPingInterval;
  EXPECT_EQ(ValidateChannelOptions(options).code(),
            absl::StatusCode::kInvalidArgument);
  options = ChannelOptions{};
  options.keepalive_timeout = absl::ZeroDuration();
  EXPECT_EQ(ValidateChannelOptions(options).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace worker
