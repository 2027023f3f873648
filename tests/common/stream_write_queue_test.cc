#include "common/stream_write_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace common {
namespace {

// Records what the queue asks of a reactor.
struct RecordingReactor {
  void StartWrite(const std::string* message, grpc::WriteOptions options) {
    writes.push_back(*message);
    hints.push_back(options.get_buffer_hint());
  }
  void Finish(grpc::Status status) { finishes.push_back(status); }

  std::vector<std::string> writes;
  std::vector<bool> hints;
  std::vector<grpc::Status> finishes;
};

using Queue = StreamWriteQueue<RecordingReactor, std::string>;

TEST(StreamWriteQueueTest, OneWriteInFlightTheRestInOrderAfterEachWriteDone) {
  RecordingReactor r;
  Queue q(&r);
  q.Push("a");
  q.Push("b");
  EXPECT_TRUE(q.Write());
  q.Push("c");
  EXPECT_TRUE(q.Write());  // still the one in flight
  EXPECT_EQ(r.writes, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(q.OnWriteDone(true));
  EXPECT_TRUE(q.OnWriteDone(true));
  EXPECT_EQ(r.writes, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.hints,
            (std::vector<bool>{false, false, false}));  // not asked for
  EXPECT_TRUE(q.OnWriteDone(true));
  EXPECT_FALSE(q.writing());
  EXPECT_TRUE(r.finishes.empty());
}

TEST(StreamWriteQueueTest, FinishWaitsForTheWriteInFlightAndDropsTheQueue) {
  RecordingReactor r;
  Queue q(&r);
  q.Push("a");
  q.Push("b");
  q.Write();
  q.Finish(grpc::Status(grpc::RESOURCE_EXHAUSTED, "behind"));
  q.Finish(grpc::Status::OK);  // ignored
  q.Push("c");                 // dropped
  EXPECT_TRUE(r.finishes.empty()) << "never while a write is in flight";
  EXPECT_FALSE(q.OnWriteDone(true));
  EXPECT_EQ(r.writes, (std::vector<std::string>{"a"}));
  ASSERT_EQ(r.finishes.size(), 1u);
  EXPECT_EQ(r.finishes[0].error_code(), grpc::RESOURCE_EXHAUSTED);
}

TEST(StreamWriteQueueTest, FinishAfterQueuedWritesEverythingFirst) {
  RecordingReactor r;
  Queue q(&r);
  q.Push("a");
  q.Push("b");
  q.FinishAfterQueued(grpc::Status::OK);
  q.OnWriteDone(true);
  EXPECT_TRUE(r.finishes.empty());
  q.OnWriteDone(true);
  EXPECT_EQ(r.writes, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(r.finishes.size(), 1u);
  EXPECT_TRUE(r.finishes[0].ok());
}

TEST(StreamWriteQueueTest, AFailedWriteFinishesCancelledOrWaitsForTheOwner) {
  RecordingReactor r;
  Queue q(&r);
  q.Push("a");
  q.Push("b");
  q.Write();
  EXPECT_FALSE(q.OnWriteDone(false));
  ASSERT_EQ(r.finishes.size(), 1u);
  EXPECT_EQ(r.finishes[0].error_code(), grpc::CANCELLED);
  EXPECT_EQ(r.writes.size(), 1u);

  RecordingReactor owner;
  Queue waits(&owner, {.on_failure = Queue::OnWriteFailure::kWaitForFinish});
  waits.Push("a", 10);
  waits.Push("b", 20);
  waits.Write();
  EXPECT_EQ(waits.queued_bytes(), 30u);
  EXPECT_FALSE(waits.OnWriteDone(false));
  EXPECT_TRUE(owner.finishes.empty());
  EXPECT_TRUE(waits.broken());
  EXPECT_EQ(waits.queued_bytes(), 0u);
  waits.Push("c");
  EXPECT_FALSE(waits.Write());
  waits.FinishAfterQueued(grpc::Status(grpc::INTERNAL, "run failed"));
  ASSERT_EQ(owner.finishes.size(), 1u);
  EXPECT_EQ(owner.finishes[0].error_code(), grpc::INTERNAL);
  EXPECT_EQ(owner.writes, (std::vector<std::string>{"a"}));
}

TEST(StreamWriteQueueTest, BufferHintOnlyWhenAskedAndMoreIsQueued) {
  RecordingReactor r;
  Queue q(&r, {.buffer_hint_while_queued = true});
  q.Push("a");
  q.Push("b");
  q.Write();
  q.OnWriteDone(true);
  EXPECT_EQ(r.hints, (std::vector<bool>{true, false}));
}

}  // namespace
}  // namespace common
