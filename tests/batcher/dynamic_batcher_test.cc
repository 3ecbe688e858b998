#include "proxy/batcher/dynamic_batcher.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fake_scheduler.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;
using testing::FakeScheduler;
using ::testing::IsEmpty;

// A batcher of ints that records what it sends and rejects.
class Recorder {
 public:
  struct Sent {
    std::vector<int> items;
    BatchInfo info;
  };

  std::shared_ptr<DynamicBatcher<int>> Make(BatcherOptions options, Scheduler* scheduler) {
    return DynamicBatcher<int>::Create(
        std::move(options), scheduler,
        [this](std::vector<int> items, const BatchInfo& info) {
          absl::MutexLock lock(&mu_);
          sent_.push_back({std::move(items), info});
        },
        [this](int item, const absl::Status& status) {
          absl::MutexLock lock(&mu_);
          rejected_.emplace_back(item, status);
        });
  }

  std::vector<Sent> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  std::vector<std::vector<int>> batches() {
    std::vector<std::vector<int>> out;
    for (const Sent& s : sent()) out.push_back(s.items);
    return out;
  }
  std::vector<std::pair<int, absl::Status>> rejected() {
    absl::MutexLock lock(&mu_);
    return rejected_;
  }
  // The call of the i-th batch sent ends: its hold on the queue's in-flight bound goes.
  void EndCall(size_t i) {
    std::shared_ptr<void> in_flight;
    {
      absl::MutexLock lock(&mu_);
      in_flight = std::move(sent_.at(i).info.in_flight);
    }
  }

 private:
  absl::Mutex mu_;
  std::vector<Sent> sent_;
  std::vector<std::pair<int, absl::Status>> rejected_;
};

constexpr absl::Duration kDelay = absl::Milliseconds(2);

class DynamicBatcherTest : public ::testing::Test {
 protected:
  std::shared_ptr<DynamicBatcher<int>> Make(size_t max, std::vector<size_t> preferred,
                                            absl::Duration delay = kDelay) {
    return recorder_.Make({.max_batch_size = max,
                           .preferred_batch_sizes = std::move(preferred),
                           .max_queue_delay = delay},
                          &clock_);
  }

  // The i-th batch's call ends, and the queue looks again (on the scheduler, as it always does
  // after a call ends).
  void EndCall(size_t i) {
    recorder_.EndCall(i);
    EXPECT_GE(clock_.pending(), 1u) << "the queue looks again on the scheduler, not inline";
    clock_.Advance(absl::ZeroDuration());
  }

  FakeScheduler clock_;
  Recorder recorder_;
};

TEST_F(DynamicBatcherTest, SendsAtOnceWhenTheQueueReachesAPreferredSize) {
  auto batcher = Make(8, {2, 4});
  batcher->Enqueue(1);
  EXPECT_THAT(recorder_.batches(), IsEmpty());
  batcher->Enqueue(2);
  ASSERT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(recorder_.sent()[0].items, ElementsAre(1, 2));
  EXPECT_EQ(recorder_.sent()[0].info.trigger, BatchTrigger::kPreferredSize);
  EXPECT_EQ(recorder_.sent()[0].info.size, 2u);
  EXPECT_EQ(batcher->queued(), 0u);
}

TEST_F(DynamicBatcherTest, SendsTheLargestPreferredSizeAHeadOfTheQueueReaches) {
  auto batcher = Make(16, {2, 4});
  batcher->Enqueue(1, /*size=*/1);
  const auto big = batcher->Enqueue(2, /*size=*/5);  // heads: 1, 6
  batcher->Enqueue(3, /*size=*/1);                   // 7
  batcher->Enqueue(4, /*size=*/2);                   // 9
  EXPECT_THAT(recorder_.batches(), IsEmpty());
  // Without item 2 the heads are 1, 2 and 4: both preferred sizes are reachable; 4 wins.
  ASSERT_TRUE(batcher->Cancel(big));
  ASSERT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(recorder_.sent()[0].items, ElementsAre(1, 3, 4));
  EXPECT_EQ(recorder_.sent()[0].info.size, 4u);
  EXPECT_EQ(recorder_.sent()[0].info.trigger, BatchTrigger::kPreferredSize);
}

TEST_F(DynamicBatcherTest, APreferredSizeCountsItemSizesNotItems) {
  auto batcher = Make(8, {3});
  batcher->Enqueue(1, 1);
  batcher->Enqueue(2, 2);
  ASSERT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(recorder_.sent()[0].items, ElementsAre(1, 2));
  EXPECT_EQ(recorder_.sent()[0].info.size, 3u);
}

TEST_F(DynamicBatcherTest, SendsMaxBatchSizeWhenTheQueueIsFull) {
  auto batcher = Make(3, {});
  batcher->Enqueue(1);
  batcher->Enqueue(2);
  EXPECT_THAT(recorder_.batches(), IsEmpty());
  batcher->Enqueue(3);
  ASSERT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(recorder_.sent()[0].items, ElementsAre(1, 2, 3));
  EXPECT_EQ(recorder_.sent()[0].info.trigger, BatchTrigger::kMaxSize);
}

TEST_F(DynamicBatcherTest, SendsTheHeadThatFitsWhenTheNextItemWouldOverflow) {
  auto batcher = Make(4, {});
  batcher->Enqueue(1, 3);
  batcher->Enqueue(2, 2);  // 5 > 4: item 1 goes, item 2 waits
  ASSERT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(recorder_.sent()[0].items, ElementsAre(1));
  EXPECT_EQ(recorder_.sent()[0].info.trigger, BatchTrigger::kMaxSize);
  EXPECT_EQ(batcher->queued(), 1u);
  clock_.Advance(kDelay);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1), ElementsAre(2)));
}

TEST_F(DynamicBatcherTest, AnItemLargerThanMaxBatchSizeGoesAlone) {
  auto batcher = Make(4, {});
  batcher->Enqueue(1, 1);
  batcher->Enqueue(2, 10);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1), ElementsAre(2)));
  EXPECT_EQ(recorder_.sent()[1].info.size, 10u);
  EXPECT_EQ(batcher->queued(), 0u);
}

TEST_F(DynamicBatcherTest, SendsEverythingQueuedWhenTheOldestHasWaitedTheDelay) {
  // Three items never reach the preferred size 4: when the first has waited the delay, all three
  // go together (not a smaller preferred size: there is none, and younger items go along).
  auto batcher = Make(8, {4});
  batcher->Enqueue(1);
  clock_.Advance(absl::Microseconds(500));
  batcher->Enqueue(2);
  clock_.Advance(absl::Microseconds(500));
  batcher->Enqueue(3);
  clock_.Advance(absl::Microseconds(999));
  EXPECT_THAT(recorder_.batches(), IsEmpty());
  clock_.Advance(absl::Microseconds(1));
  ASSERT_EQ(recorder_.sent().size(), 1u);
  const Recorder::Sent sent = recorder_.sent()[0];
  EXPECT_THAT(sent.items, ElementsAre(1, 2, 3));
  EXPECT_EQ(sent.info.trigger, BatchTrigger::kQueueDelay);
  EXPECT_THAT(sent.info.queue_delays,
              ElementsAre(kDelay, absl::Microseconds(1500), absl::Microseconds(1000)));
}

TEST_F(DynamicBatcherTest, OnTheDelayPreferredSizesDoNotHoldBackYoungerItems) {
  // Heads 3 and 4 are not the preferred 2: at the delay the whole queue goes as one batch.
  auto batcher = Make(8, {2});
  batcher->Enqueue(1, 3);
  batcher->Enqueue(2, 1);
  clock_.Advance(kDelay);
  ASSERT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(recorder_.sent()[0].items, ElementsAre(1, 2));
}

TEST_F(DynamicBatcherTest, ArmsOneTimerForTheOldestItemsDeadline) {
  auto batcher = Make(8, {});
  const absl::Time start = clock_.Now();
  batcher->Enqueue(1);
  clock_.Advance(absl::Milliseconds(1));
  batcher->Enqueue(2);  // the pending timer already covers it
  EXPECT_THAT(clock_.armed(), ElementsAre(start + kDelay));
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2)));
  EXPECT_EQ(clock_.pending(), 0u);
}

TEST_F(DynamicBatcherTest, ATimerThatFiresEarlyIsArmedAgainForTheNewOldestItem) {
  auto batcher = Make(2, {});
  const absl::Time start = clock_.Now();
  batcher->Enqueue(1);  // timer at start + 2 ms
  batcher->Enqueue(2);  // full: sent
  clock_.Advance(absl::Milliseconds(1));
  batcher->Enqueue(3);  // due at start + 3 ms
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2)));
  EXPECT_THAT(clock_.armed(), ElementsAre(start + kDelay, start + absl::Milliseconds(3)));
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2), ElementsAre(3)));
}

TEST_F(DynamicBatcherTest, AtMaxInFlightTheQueueHoldsItsBatchesUntilACallEnds) {
  auto batcher =
      recorder_.Make({.max_batch_size = 4, .max_queue_delay = kDelay, .max_in_flight = 1}, &clock_);
  for (int i = 1; i <= 4; ++i) batcher->Enqueue(i);
  ASSERT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2, 3, 4)));
  EXPECT_NE(recorder_.sent()[0].info.in_flight, nullptr);

  // The one call allowed runs: neither the delay nor a full batch sends, and no timer is armed
  // (the call's end looks at the queue).
  batcher->Enqueue(5);
  clock_.Advance(2 * kDelay);
  for (int i = 6; i <= 9; ++i) batcher->Enqueue(i);
  EXPECT_EQ(recorder_.sent().size(), 1u);
  EXPECT_EQ(batcher->queued(), 5u);
  EXPECT_EQ(clock_.pending(), 0u);
  EXPECT_FALSE(batcher->idle());

  // Its end sends a full batch of what waited; 9 waits for the next end.
  EndCall(0);
  ASSERT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2, 3, 4), ElementsAre(5, 6, 7, 8)));
  EXPECT_EQ(recorder_.sent()[1].info.trigger, BatchTrigger::kMaxSize);
  EXPECT_EQ(recorder_.sent()[1].info.queue_delays[0], 2 * kDelay);
  EndCall(1);
  // 9 has not waited its delay yet: now that a call may start, a timer is armed for it.
  EXPECT_EQ(recorder_.sent().size(), 2u);
  EXPECT_EQ(clock_.pending(), 1u);
  clock_.Advance(kDelay);
  ASSERT_THAT(recorder_.batches(),
              ElementsAre(ElementsAre(1, 2, 3, 4), ElementsAre(5, 6, 7, 8), ElementsAre(9)));
  EndCall(2);
  EXPECT_TRUE(batcher->idle());
}

TEST_F(DynamicBatcherTest, AtMaxInFlightAnItemWhoseDeadlinePassesIsRejectedAndTheOthersStay) {
  auto batcher =
      recorder_.Make({.max_batch_size = 2, .max_queue_delay = kDelay, .max_in_flight = 1}, &clock_);
  const absl::Time start = clock_.Now();
  batcher->Enqueue(1);
  batcher->Enqueue(2);
  ASSERT_EQ(recorder_.sent().size(), 1u);  // its call runs (hangs) from here on
  batcher->Enqueue(3);                     // no deadline
  batcher->Enqueue(4, 1, start + absl::Milliseconds(10));
  batcher->Enqueue(5, 1, start + absl::Milliseconds(20));
  batcher->Enqueue(6);
  // The timer armed for 1's delay fires first; held, the queue then arms for the earliest deadline
  // only, not for 3's delay.
  EXPECT_THAT(clock_.armed(), ElementsAre(start + kDelay));

  clock_.Advance(absl::Milliseconds(10));
  ASSERT_EQ(recorder_.rejected().size(), 1u);
  EXPECT_EQ(recorder_.rejected()[0].first, 4);
  const absl::Status status = recorder_.rejected()[0].second;
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), ::testing::HasSubstr("after 10ms waiting for a batch"));
  EXPECT_THAT(status.message(), ::testing::HasSubstr("1 call of this queue still running"));
  EXPECT_EQ(batcher->queued(), 3u);
  EXPECT_EQ(recorder_.sent().size(), 1u);
  EXPECT_THAT(clock_.armed(), ElementsAre(start + kDelay, start + absl::Milliseconds(10),
                                          start + absl::Milliseconds(20)));
  EXPECT_EQ(clock_.pending(), 1u) << "armed again, for 5's deadline";

  clock_.Advance(absl::Milliseconds(10));
  ASSERT_EQ(recorder_.rejected().size(), 2u);
  EXPECT_EQ(recorder_.rejected()[1].first, 5);
  EXPECT_EQ(clock_.pending(), 0u) << "3 and 6 have no deadline: the call's end sends them";
  EXPECT_FALSE(batcher->Cancel(4)) << "gone from the queue";

  EndCall(0);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2), ElementsAre(3, 6)));
  EXPECT_EQ(recorder_.sent()[1].info.trigger, BatchTrigger::kMaxSize);
  EXPECT_EQ(recorder_.rejected().size(), 2u);
}

TEST_F(DynamicBatcherTest, AnItemArrivingWithAnEarlierDeadlineArmsAnEarlierTimer) {
  auto batcher =
      recorder_.Make({.max_batch_size = 1, .max_queue_delay = kDelay, .max_in_flight = 1}, &clock_);
  const absl::Time start = clock_.Now();
  batcher->Enqueue(1);  // sent; its call holds the queue
  batcher->Enqueue(2, 1, start + absl::Milliseconds(10));
  batcher->Enqueue(3, 1, start + absl::Milliseconds(5));
  batcher->Enqueue(4, 1, start + absl::Milliseconds(20));
  EXPECT_THAT(clock_.armed(),
              ElementsAre(start + absl::Milliseconds(10), start + absl::Milliseconds(5)));
  clock_.Advance(absl::Milliseconds(5));
  ASSERT_EQ(recorder_.rejected().size(), 1u);
  EXPECT_EQ(recorder_.rejected()[0].first, 3);
  clock_.Advance(absl::Milliseconds(5));  // the first timer, still pending, serves for 2
  ASSERT_EQ(recorder_.rejected().size(), 2u);
  EXPECT_EQ(recorder_.rejected()[1].first, 2);
  EXPECT_THAT(clock_.armed(),
              ElementsAre(start + absl::Milliseconds(10), start + absl::Milliseconds(5),
                          start + absl::Milliseconds(20)));
  EndCall(0);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1), ElementsAre(4)));
  EXPECT_EQ(batcher->queued(), 0u);
}

TEST_F(DynamicBatcherTest, AnItemFoundPastItsDeadlineIsRejectedNotSent) {
  auto batcher = Make(8, {});
  batcher->Enqueue(1, 1, clock_.Now() + absl::Milliseconds(1));
  batcher->Enqueue(2);
  clock_.Advance(kDelay);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(2)));
  ASSERT_EQ(recorder_.rejected().size(), 1u);
  EXPECT_EQ(recorder_.rejected()[0].second.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(recorder_.rejected()[0].second.message(),
              ::testing::Not(::testing::HasSubstr("still running")))
      << "nothing held it";
}

TEST_F(DynamicBatcherTest, ACallEndingWithinItsSendFreesItsPlaceOnTheSchedulerNotInline) {
  // A backend that fails a call before returning from it ends the call within the send. Were the
  // place freed inline, the next batch would be sent from inside that stack, and so on: one more
  // nested send per queued batch. It is freed on the scheduler's thread instead.
  std::vector<int> sent;
  auto batcher = DynamicBatcher<int>::Create(
      {.max_batch_size = 1, .max_queue_delay = kDelay, .max_in_flight = 1}, &clock_,
      [&sent](std::vector<int> items, const BatchInfo&) { sent.push_back(items[0]); },
      [](int, const absl::Status&) {});
  for (int i = 1; i <= 4; ++i) batcher->Enqueue(i);
  EXPECT_THAT(sent, ElementsAre(1)) << "the others wait for the scheduler";
  clock_.Advance(absl::ZeroDuration());
  EXPECT_THAT(sent, ElementsAre(1, 2, 3, 4));
  EXPECT_TRUE(batcher->idle());
}

TEST_F(DynamicBatcherTest, WithoutABoundOnCallsInFlightBatchesHoldNothing) {
  auto batcher = Make(2, {});
  batcher->Enqueue(1);
  batcher->Enqueue(2);
  batcher->Enqueue(3);
  batcher->Enqueue(4);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2), ElementsAre(3, 4)));
  EXPECT_EQ(recorder_.sent()[0].info.in_flight, nullptr);
  EXPECT_TRUE(batcher->idle());
}

TEST_F(DynamicBatcherTest, ACallMayEndAfterItsBatcherIsGone) {
  auto batcher = recorder_.Make({.max_batch_size = 1, .max_in_flight = 1}, &clock_);
  batcher->Enqueue(1);
  batcher.reset();
  recorder_.EndCall(0);  // its hold outlives the queue harmlessly
  EXPECT_EQ(recorder_.sent().size(), 1u);
}

TEST_F(DynamicBatcherTest, WithoutADelayEachItemIsSentAsItArrives) {
  auto batcher = Make(8, {4}, absl::ZeroDuration());
  batcher->Enqueue(1);
  batcher->Enqueue(2);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1), ElementsAre(2)));
  EXPECT_EQ(recorder_.sent()[0].info.trigger, BatchTrigger::kQueueDelay);
  EXPECT_EQ(clock_.pending(), 0u);
}

TEST_F(DynamicBatcherTest, ACancelledQueuedItemLeavesTheQueueAndIsRejectedCancelled) {
  auto batcher = Make(8, {});
  batcher->Enqueue(1);
  const auto ticket = batcher->Enqueue(2);
  batcher->Enqueue(3);
  EXPECT_TRUE(batcher->Cancel(ticket));
  ASSERT_EQ(recorder_.rejected().size(), 1u);
  EXPECT_EQ(recorder_.rejected()[0].first, 2);
  EXPECT_EQ(recorder_.rejected()[0].second.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(batcher->Cancel(ticket)) << "cancelled once";
  clock_.Advance(kDelay);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 3)));
}

TEST_F(DynamicBatcherTest, OnceSentAnItemIsPartOfItsBatchAndCannotBeCancelled) {
  auto batcher = Make(2, {});
  const auto ticket = batcher->Enqueue(1);
  batcher->Enqueue(2);
  EXPECT_FALSE(batcher->Cancel(ticket));
  EXPECT_THAT(recorder_.rejected(), IsEmpty());
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(1, 2)));
  EXPECT_FALSE(batcher->Cancel(12345)) << "an unknown ticket";
}

TEST_F(DynamicBatcherTest, CancellingTheOnlyItemLeavesTheTimerHarmless) {
  auto batcher = Make(8, {});
  EXPECT_TRUE(batcher->Cancel(batcher->Enqueue(1)));
  clock_.Advance(kDelay);
  EXPECT_THAT(recorder_.batches(), IsEmpty());
  EXPECT_EQ(clock_.pending(), 0u);
}

TEST_F(DynamicBatcherTest, APendingTimerKeepsTheBatcherAliveUntilItsItemsAreSent) {
  Make(8, {})->Enqueue(7);  // the caller's reference is gone at once
  clock_.Advance(kDelay);
  EXPECT_THAT(recorder_.batches(), ElementsAre(ElementsAre(7)));
}

TEST_F(DynamicBatcherTest, SendMayEnqueueIntoTheSameBatcher) {
  std::shared_ptr<DynamicBatcher<int>> batcher;
  std::vector<std::vector<int>> batches;
  batcher = DynamicBatcher<int>::Create(
      {.max_batch_size = 2, .preferred_batch_sizes = {}, .max_queue_delay = kDelay}, &clock_,
      [&](std::vector<int> items, const BatchInfo&) {
        batches.push_back(items);
        if (items[0] < 10) batcher->Enqueue(items[0] + 10);  // a retry, say
      },
      [](int, const absl::Status&) {});
  batcher->Enqueue(1);
  batcher->Enqueue(2);
  clock_.Advance(kDelay);
  EXPECT_THAT(batches, ElementsAre(ElementsAre(1, 2), ElementsAre(11)));
}

// Many threads enqueue and cancel at once: every item is sent or rejected exactly once, and no
// batch is larger than max_batch_size.
TEST(DynamicBatcherConcurrency, EveryItemIsSentOrRejectedExactlyOnce) {
  FakeScheduler clock;
  constexpr size_t kThreads = 4, kPerThread = 2000, kMax = 8;
  absl::Mutex mu;
  std::vector<int> seen(kThreads * kPerThread, 0);
  bool oversized = false;
  auto count = [&](int item) {
    absl::MutexLock lock(&mu);
    ++seen[item];
  };
  auto batcher = DynamicBatcher<int>::Create(
      {.max_batch_size = kMax, .preferred_batch_sizes = {4}, .max_queue_delay = absl::Hours(1)},
      &clock,
      [&](const std::vector<int>& items, const BatchInfo& info) {
        if (items.size() > kMax || info.size != items.size()) {
          absl::MutexLock lock(&mu);
          oversized = true;
        }
        for (int item : items) count(item);
      },
      [&](int item, const absl::Status& status) {
        EXPECT_TRUE(absl::IsCancelled(status));
        count(item);
      });
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < kPerThread; ++i) {
        const auto ticket = batcher->Enqueue(static_cast<int>(t * kPerThread + i));
        if (i % 3 == 0) batcher->Cancel(ticket);  // sometimes queued still, sometimes sent
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  clock.Advance(absl::Hours(1));  // whatever is left
  EXPECT_EQ(batcher->queued(), 0u);
  EXPECT_FALSE(oversized);
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "item " << i;
}

// The real scheduler: a lone item is sent by the timer thread after the delay.
TEST(DynamicBatcherRealScheduler, SendsALoneItemAfterTheDelay) {
  absl::Notification sent;
  std::atomic<int64_t> delay_us{-1};
  auto batcher = DynamicBatcher<std::string>::Create(
      {.max_batch_size = 4, .preferred_batch_sizes = {}, .max_queue_delay = absl::Milliseconds(1)},
      &RealScheduler(),
      [&](const std::vector<std::string>& items, const BatchInfo& info) {
        EXPECT_THAT(items, ElementsAre("x"));
        delay_us = absl::ToInt64Microseconds(info.queue_delays[0]);
        sent.Notify();
      },
      [](const std::string&, const absl::Status&) {});
  batcher->Enqueue("x");
  ASSERT_TRUE(sent.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_GE(delay_us.load(), 1000);
}

}  // namespace
}  // namespace tollgate
