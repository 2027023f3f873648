#include "server/standby.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace server {
namespace {

class Refusal final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refusal(const std::string& message) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, message));
  }
  void OnDone() override { delete this; }
};

}  // namespace

void StandbyService::SetLeader(std::string leader) {
  absl::MutexLock lock(&mu_);
  leader_ = std::move(leader);
}

std::string StandbyService::Message() {
  absl::MutexLock lock(&mu_);
  return absl::StrCat(
      "this server is a standby",
      leader_.empty() ? "; no server leads at the moment (a takeover is "
                        "under way)"
                      : absl::StrCat("; the leader is ", leader_),
      ": try again (the leader's address, or this one once it leads)");
}

grpc::ServerGenericBidiReactor* StandbyService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new Refusal(Message());
}

}  // namespace server
