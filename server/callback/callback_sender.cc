// Delivery runs on a thread of its own and reads the store itself, so the
// scheduler never waits for a receiver: its only part is marking the
// callback PENDING in the task's terminal write.
#include "server/callback/callback_sender.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "glog/logging.h"
#include "google/protobuf/util/json_util.h"

namespace server {
namespace {

using crucible::v1::CallbackDelivery;
using crucible::v1::Task;

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// The receiver's answer is not read: only its status counts.
size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

common::MetricFamily<common::Counter>& Deliveries(
    common::MetricsRegistry* registry) {
  return (registry != nullptr ? *registry : common::DefaultMetricsRegistry())
      .AddCounter("crucible_server_callback_deliveries_total",
                  "Completion callback POSTs by outcome: delivered (2xx), "
                  "failed (tried again later), gave_up (the last one).",
                  {"outcome"});
}

}  // namespace

CallbackRequest MakeCallbackRequest(const Task& task, const CallbackKey& key,
                                    absl::Time now) {
  Task body_task = task;
  // How the delivery goes is not part of what is delivered.
  body_task.clear_callback();
  CallbackRequest req;
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = false;
  // A Task always serializes; the status is ignored on purpose.
  (void)google::protobuf::util::MessageToJsonString(body_task, &req.body, json);
  const std::string timestamp = absl::StrCat(absl::ToUnixSeconds(now));
  req.headers = {
      "Content-Type: application/json",
      absl::StrCat("X-Crucible-Delivery: ", task.id()),
      absl::StrCat("X-Crucible-Timestamp: ", timestamp),
      absl::StrCat("X-Crucible-Key-Id: ", key.id),
      absl::StrCat("X-Crucible-Signature: v1=",
                   CallbackSignature(key.secret, timestamp, req.body)),
      // No "Expect: 100-continue" round trip.
      "Expect:",
  };
  return req;
}

CallbackSender::CallbackSender(TaskStore& store, DurableOutbox& outbox,
                               CallbackSenderOptions options,
                               const common::Clock& clock)
    : store_(store),
      outbox_(outbox),
      options_(std::move(options)),
      clock_(clock),
      delivered_(Deliveries(options_.metrics).WithLabels({"delivered"})),
      failed_(Deliveries(options_.metrics).WithLabels({"failed"})),
      gave_up_(Deliveries(options_.metrics).WithLabels({"gave_up"})) {
  CHECK(!options_.keys.empty()) << "callbacks need a signing key";
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  thread_ = std::thread([this] { Loop(); });
}

CallbackSender::~CallbackSender() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void CallbackSender::Loop() {
  while (true) {
    PollOnce();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.poll_interval);
    if (stopping_) return;
  }
}

void CallbackSender::PollOnce() {
  absl::StatusOr<std::vector<std::string>> owed =
      store_.LoadPendingCallbackBytes(options_.batch);
  if (!owed.ok()) {
    LOG(WARNING) << "callbacks: cannot read the callbacks owed: "
                 << owed.status();
    return;
  }
  absl::flat_hash_map<std::string, absl::Time> still_waiting;
  for (const std::string& bytes : *owed) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    absl::StatusOr<Task> task = ParseStoredTask(bytes);
    if (!task.ok()) continue;
    auto wait = next_try_.find(task->id());
    if (wait != next_try_.end() && clock_.Now() < wait->second) {
      still_waiting.insert(*wait);
      continue;
    }
    const std::string id = task->id();
    Deliver(*std::move(task));
    if (auto again = next_try_.find(id); again != next_try_.end()) {
      still_waiting.insert(*again);
    }
  }
  // Forget the waits of callbacks no longer owed (delivered, given up,
  // purged), unless the page was full and they may just not be on it.
  if (static_cast<int>(owed->size()) < options_.batch) {
    next_try_ = std::move(still_waiting);
  }
}

absl::Duration CallbackSender::Backoff(int attempts) {
  absl::Duration wait = options_.initial_backoff;
  for (int i = 1; i < attempts && wait < options_.max_backoff; ++i) wait *= 2;
  wait = std::min(wait, options_.max_backoff);
  static thread_local absl::BitGen gen;
  return wait * absl::Uniform(gen, 0.5, 1.0);
}

void CallbackSender::Deliver(Task task) {
  const absl::Time now = clock_.Now();
  CallbackDelivery& cb = *task.mutable_callback();
  const absl::Time deadline =
      common::FromProtoTime(task.end_time()) + options_.horizon;
  next_try_.erase(task.id());
  auto give_up = [&](std::string why) {
    cb.set_state(crucible::v1::CALLBACK_STATE_GAVE_UP);
    cb.set_last_error(std::move(why));
    *cb.mutable_end_time() = common::ToProtoTime(now);
    gave_up_.Increment();
    LOG(WARNING) << "task " << task.id() << ": gave up its callback after "
                 << cb.attempts() << " POSTs: " << cb.last_error();
  };
  absl::StatusOr<CallbackTarget> target = CheckCallbackUrl(
      "callback_url", task.spec().callback_url(), options_.hosts);
  if (!target.ok()) {
    give_up(std::string(target.status().message()));
  } else if (cb.attempts() > 0 && now >= deadline) {
    give_up(absl::StrCat("the retry horizon passed; last error: ",
                         cb.last_error()));
  } else {
    CallbackPostResult result =
        Post(task.spec().callback_url(),
             MakeCallbackRequest(task, options_.keys.front(), now));
    cb.set_attempts(cb.attempts() + 1);
    if (result.delivered) {
      cb.set_state(crucible::v1::CALLBACK_STATE_DELIVERED);
      cb.clear_last_error();
      *cb.mutable_end_time() = common::ToProtoTime(clock_.Now());
      delivered_.Increment();
      VLOG(1) << "task " << task.id() << ": callback delivered";
    } else {
      const absl::Duration wait = Backoff(cb.attempts());
      if (clock_.Now() + wait >= deadline) {
        give_up(absl::StrCat("the retry horizon passed; last error: ",
                             result.error));
      } else {
        cb.set_last_error(result.error);
        failed_.Increment();
        next_try_[task.id()] = clock_.Now() + wait;
        VLOG(1) << "task " << task.id() << ": callback failed (" << result.error
                << "); again in " << wait;
      }
    }
  }
  // Recorded durably before the next poll reads the store again.
  absl::Status s =
      outbox_.AwaitDurable(outbox_.Submit(TaskWrite::Update(task)));
  if (!s.ok()) {
    LOG(WARNING) << "task " << task.id()
                 << ": cannot record its callback's delivery: " << s;
    // Until the write lands (a full disk waits for space), the store still
    // says PENDING: not another POST every poll meanwhile.
    if (cb.state() != crucible::v1::CALLBACK_STATE_PENDING) {
      next_try_[task.id()] = clock_.Now() + options_.max_backoff;
    }
  }
}

CallbackPostResult CallbackSender::Post(const std::string& url,
                                        const CallbackRequest& req) {
  std::unique_ptr<CURL, EasyDeleter> curl(curl_easy_init());
  if (curl == nullptr) return {.error = "curl_easy_init failed"};
  std::unique_ptr<curl_slist, ListDeleter> headers;
  for (const std::string& h : req.headers) {
    curl_slist* grown = curl_slist_append(headers.get(), h.c_str());
    if (grown == nullptr) return {.error = "out of memory"};
    headers.release();
    headers.reset(grown);
  }
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  // A redirect is an answer that is not 2xx: a failure, never followed.
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      c, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.post_timeout)));
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Discard);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "crucible-server");
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) return {.error = curl_easy_strerror(rc)};
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return {.delivered = true};
  return {.error = absl::StrCat("HTTP ", status)};
}

}  // namespace server
