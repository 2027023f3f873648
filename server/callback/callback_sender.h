#ifndef CRUCIBLE_SERVER_CALLBACK_CALLBACK_SENDER_H_
#define CRUCIBLE_SERVER_CALLBACK_CALLBACK_SENDER_H_

#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "crucible/v1/task.pb.h"
#include "server/callback/callback_signer.h"
#include "server/callback/callback_url.h"
#include "server/outbox/durable_outbox.h"
#include "server/store/task_store.h"

namespace server {

struct CallbackSenderOptions {
  // Hosts a callback may still go to when it is sent (a host removed from
  // the list since CreateTask makes the callback GAVE_UP).
  CallbackHosts hosts;
  // Signing keys; the first signs. Must not be empty.
  std::vector<CallbackKey> keys;
  // After the task's end_time, no new POST once this has passed: GAVE_UP.
  absl::Duration horizon = absl::Hours(24);
  // Wait before the second POST; doubles up to max_backoff, with jitter
  // (each wait a random 50-100% of the nominal one).
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(10);
  // Longest one POST may take, connect included.
  absl::Duration post_timeout = absl::Seconds(10);
  // How often the store is asked for callbacks owed.
  absl::Duration poll_interval = absl::Seconds(1);
  // Callbacks read from the store per poll.
  int batch = 256;
  // Where crucible_server_callback_deliveries_total goes; null: the
  // process's common::DefaultMetricsRegistry().
  common::MetricsRegistry* metrics = nullptr;
};

// The result of one POST.
struct CallbackPostResult {
  bool delivered = false;  // a 2xx
  std::string error;       // why not, when not
};

// The request of one completion callback: the body and the headers.
struct CallbackRequest {
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
};
// The request that delivers `task`'s callback at `now`, signed with `key`.
CallbackRequest MakeCallbackRequest(const crucible::v1::Task& task,
                                    const CallbackKey& key, absl::Time now);

// Delivers completion callbacks: at least once, off the scheduler.
// Thread-safe; owns one thread, which polls the store for terminal tasks
// whose callback is PENDING (the scheduler marks it so in the task's
// terminal write, so it survives a crash), POSTs each, and records the
// outcome in the task (Task.callback) through the outbox. Only the leader
// constructs one. The wait between tries is kept in memory: after a
// restart, every callback owed is tried at once.
class CallbackSender {
 public:
  // `store`, `outbox` and `clock` must outlive the sender.
  CallbackSender(TaskStore& store, DurableOutbox& outbox,
                 CallbackSenderOptions options, const common::Clock& clock);
  // Stops after the POST in progress (if any) and joins the thread.
  ~CallbackSender();
  CallbackSender(const CallbackSender&) = delete;
  CallbackSender& operator=(const CallbackSender&) = delete;

 private:
  void Loop();
  // One poll: every callback owed whose wait is over is tried once.
  void PollOnce();
  // One POST of `task`'s callback and its outcome recorded.
  void Deliver(crucible::v1::Task task);
  CallbackPostResult Post(const std::string& url, const CallbackRequest& req);
  absl::Duration Backoff(int attempts);

  TaskStore& store_;
  DurableOutbox& outbox_;
  const CallbackSenderOptions options_;
  const common::Clock& clock_;
  common::Counter& delivered_;
  common::Counter& failed_;
  common::Counter& gave_up_;

  // Touched only by the thread: when each failed callback may be tried again.
  absl::flat_hash_map<std::string, absl::Time> next_try_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_CALLBACK_CALLBACK_SENDER_H_
