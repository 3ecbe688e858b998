#include "accounting/kv/kv_admission.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "accounting/kv/kv_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/common/fake_scheduler.h"

namespace tollgate {
namespace {

using ::testing::AllOf;
using testing::FakeScheduler;
using ::testing::HasSubstr;

constexpr uint64_t kBlock = 16'000;  // 16 tokens × 1000 bytes
constexpr uint64_t kBytesPerToken = 1000;

// What one Admit's `done` was given, and on which thread.
struct Outcome {
  std::optional<absl::Status> status;
  std::thread::id thread;

  std::function<void(absl::Status)> Done() {
    return [this](absl::Status s) {
      EXPECT_FALSE(status.has_value()) << "done ran twice";
      status = std::move(s);
      thread = std::this_thread::get_id();
    };
  }
  bool admitted() const { return status.has_value() && status->ok(); }
  bool pending() const { return !status.has_value(); }
};

class KvAdmissionTest : public ::testing::Test {
 protected:
  static constexpr absl::Duration kQueueWait = absl::Seconds(10);

  absl::Time Later() { return scheduler_.Now() + absl::Hours(1); }

  FakeScheduler scheduler_;
  KvTracker tracker_{10 * kBlock};
  std::unique_ptr<KvAdmission> admission_ = std::make_unique<KvAdmission>(
      tracker_, scheduler_,
      KvAdmissionOptions{.backend = "gpu-a", .max_queue = 3, .max_queue_wait = kQueueWait});
};

TEST_F(KvAdmissionTest, AdmitsAtOnceOnTheCallersThreadWhenTheProjectionFits) {
  Outcome a;
  admission_->Admit(4 * kBlock, Later(), a.Done());
  EXPECT_TRUE(a.admitted());
  EXPECT_EQ(a.thread, std::this_thread::get_id());
  EXPECT_EQ(tracker_.held_bytes(), 4 * kBlock);
  EXPECT_EQ(scheduler_.pending(), 0u);  // no timer for a request that did not wait
}

TEST_F(KvAdmissionTest, AnAdmittedRequestIsCountedOnceFromAdmitToEnd) {
  Outcome a;
  admission_->Admit(4 * kBlock, Later(), a.Done());  // prompt 20 + max_tokens 44 = 64 tokens
  ASSERT_TRUE(a.admitted());
  KvRequest kv = tracker_.Begin(20, kBytesPerToken, /*admitted_bytes=*/4 * kBlock);
  EXPECT_EQ(tracker_.live_bytes(), 2 * kBlock);
  EXPECT_EQ(tracker_.held_bytes(), 4 * kBlock);  // the projection, not projection + footprint
  tracker_.Update(kv, 44);
  EXPECT_EQ(tracker_.held_bytes(), 4 * kBlock);
  tracker_.Update(kv, 45);  // past its projection (a backend that ignored max_tokens)
  EXPECT_EQ(tracker_.held_bytes(), 5 * kBlock);
  tracker_.End(kv);
  EXPECT_EQ(tracker_.held_bytes(), 0u);
  EXPECT_EQ(tracker_.live_bytes(), 0u);
}

TEST_F(KvAdmissionTest, RequestsThatBypassAdmissionCountTheirFootprint) {
  KvRequest unadmitted = tracker_.Begin(16 * 7, kBytesPerToken);  // 7 blocks
  Outcome fits, waits;
  admission_->Admit(3 * kBlock, Later(), fits.Done());
  EXPECT_TRUE(fits.admitted());
  admission_->Admit(1, Later(), waits.Done());
  EXPECT_TRUE(waits.pending());
  tracker_.End(unadmitted);
  EXPECT_TRUE(waits.admitted());
}

TEST_F(KvAdmissionTest, AWaiterIsAdmittedOnTheThreadOfTheEndThatMadeRoom) {
  Outcome a, b;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  KvRequest kv = tracker_.Begin(100, kBytesPerToken, 8 * kBlock);
  admission_->Admit(3 * kBlock, Later(), b.Done());
  EXPECT_TRUE(b.pending());
  EXPECT_EQ(admission_->queue_depth(), 1u);

  std::thread ender([&] { tracker_.End(kv); });
  const std::thread::id ender_id = ender.get_id();
  ender.join();
  EXPECT_TRUE(b.admitted());
  EXPECT_EQ(b.thread, ender_id);
  EXPECT_EQ(admission_->queue_depth(), 0u);
  EXPECT_EQ(tracker_.held_bytes(), 3 * kBlock);
}

TEST_F(KvAdmissionTest, ReleaseWakesWaitersInArrivalOrder) {
  Outcome a, b, c, d;
  admission_->Admit(10 * kBlock, Later(), a.Done());
  admission_->Admit(6 * kBlock, Later(), b.Done());
  admission_->Admit(4 * kBlock, Later(), c.Done());
  admission_->Admit(1 * kBlock, Later(), d.Done());
  ASSERT_TRUE(a.admitted());
  EXPECT_TRUE(b.pending() && c.pending() && d.pending());
  admission_->Release(10 * kBlock);  // a will not begin
  EXPECT_TRUE(b.admitted());
  EXPECT_TRUE(c.admitted());
  EXPECT_TRUE(d.pending());  // 6 + 4 fill the 10 blocks
  admission_->Release(4 * kBlock);
  EXPECT_TRUE(d.admitted());
  EXPECT_EQ(tracker_.held_bytes(), 7 * kBlock);
}

TEST_F(KvAdmissionTest, TheOldestWaiterHoldsBackSmallerOnesBehindIt) {
  Outcome a, big, small;
  admission_->Admit(5 * kBlock, Later(), a.Done());
  admission_->Admit(9 * kBlock, Later(), big.Done());
  admission_->Admit(1 * kBlock, Later(), small.Done());  // would fit, but waits its turn
  EXPECT_TRUE(big.pending());
  EXPECT_TRUE(small.pending());
  admission_->Release(5 * kBlock);
  EXPECT_TRUE(big.admitted());
  EXPECT_TRUE(small.admitted());
}

TEST_F(KvAdmissionTest, AWaiterTimesOutWithResourceExhaustedNamingBackendAndBytes) {
  Outcome a, b;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  admission_->Admit(3 * kBlock, Later(), b.Done());
  scheduler_.Advance(kQueueWait - absl::Milliseconds(1));
  EXPECT_TRUE(b.pending());
  scheduler_.Advance(absl::Milliseconds(1));
  ASSERT_FALSE(b.pending());
  EXPECT_EQ(b.status->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(b.status->message(),
              AllOf(HasSubstr("backend \"gpu-a\""), HasSubstr("after waiting 10s"),
                    HasSubstr("needs 48000 bytes"), HasSubstr("32000 of 160000 are free")));
  EXPECT_EQ(admission_->queue_depth(), 0u);
  EXPECT_EQ(tracker_.held_bytes(), 8 * kBlock);
}

TEST_F(KvAdmissionTest, TheRequestsOwnDeadlineCutsTheWaitShort) {
  Outcome a, b;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  admission_->Admit(3 * kBlock, scheduler_.Now() + absl::Seconds(2), b.Done());
  scheduler_.Advance(absl::Seconds(2));
  ASSERT_FALSE(b.pending());
  EXPECT_EQ(b.status->code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(KvAdmissionTest, ARequestPastItsDeadlineThatDoesNotFitIsRefusedAtOnce) {
  Outcome a, b, c;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  admission_->Admit(3 * kBlock, scheduler_.Now(), b.Done());
  ASSERT_FALSE(b.pending());
  EXPECT_EQ(b.status->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(b.status->message(), HasSubstr("before the request's deadline"));
  admission_->Admit(2 * kBlock, scheduler_.Now(), c.Done());  // fits: deadlines are not judged
  EXPECT_TRUE(c.admitted());
}

TEST_F(KvAdmissionTest, WhenTheOldestWaiterGivesUpTheNextMayFit) {
  Outcome a, big, small;
  admission_->Admit(5 * kBlock, Later(), a.Done());
  admission_->Admit(9 * kBlock, scheduler_.Now() + absl::Seconds(1), big.Done());
  admission_->Admit(2 * kBlock, Later(), small.Done());
  scheduler_.Advance(absl::Seconds(1));
  EXPECT_EQ(big.status->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(small.admitted());
}

TEST_F(KvAdmissionTest, AFullQueueRefusesAtOnce) {
  Outcome a, w1, w2, w3, refused;
  admission_->Admit(10 * kBlock, Later(), a.Done());
  admission_->Admit(kBlock, Later(), w1.Done());
  admission_->Admit(kBlock, Later(), w2.Done());
  admission_->Admit(kBlock, Later(), w3.Done());
  admission_->Admit(kBlock, Later(), refused.Done());
  ASSERT_FALSE(refused.pending());
  EXPECT_EQ(refused.status->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status->message(),
              AllOf(HasSubstr("backend \"gpu-a\""), HasSubstr("queue is full (3 waiting)"),
                    HasSubstr("needs 16000 bytes"), HasSubstr("0 of 160000 are free")));
  EXPECT_EQ(admission_->queue_depth(), 3u);
}

TEST_F(KvAdmissionTest, AWithdrawnHeadIsCancelledAtOnceAndLetsTheOnesBehindItIn) {
  Outcome a, big, small;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  const KvAdmission::Ticket big_ticket = admission_->Admit(9 * kBlock, Later(), big.Done());
  admission_->Admit(1 * kBlock, Later(), small.Done());  // fits, but waits behind `big`
  ASSERT_NE(big_ticket, KvAdmission::kNoTicket);
  ASSERT_TRUE(small.pending());

  EXPECT_TRUE(admission_->Withdraw(big_ticket));
  ASSERT_FALSE(big.pending());
  EXPECT_EQ(big.status->code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(big.status->message(), HasSubstr("backend \"gpu-a\""));
  EXPECT_EQ(big.thread, std::this_thread::get_id());
  EXPECT_TRUE(small.admitted());
  EXPECT_EQ(admission_->queue_depth(), 0u);
  EXPECT_EQ(tracker_.held_bytes(), 9 * kBlock);

  EXPECT_FALSE(admission_->Withdraw(big_ticket)) << "a second withdrawal finds nothing";
  scheduler_.Advance(kQueueWait);  // nor does big's timer (Outcome fails on a second `done`)
}

TEST_F(KvAdmissionTest, WithdrawingAnAdmittedRequestDoesNothing) {
  Outcome a, b;
  EXPECT_EQ(admission_->Admit(8 * kBlock, Later(), a.Done()), KvAdmission::kNoTicket);
  const KvAdmission::Ticket b_ticket = admission_->Admit(3 * kBlock, Later(), b.Done());
  admission_->Release(8 * kBlock);
  ASSERT_TRUE(b.admitted());

  EXPECT_FALSE(admission_->Withdraw(KvAdmission::kNoTicket));
  EXPECT_FALSE(admission_->Withdraw(b_ticket));
  EXPECT_TRUE(b.admitted()) << "done ran once, with OK";
  EXPECT_EQ(tracker_.held_bytes(), 3 * kBlock) << "the hold stays the caller's";
}

TEST_F(KvAdmissionTest, WithdrawingAnUnknownOrTimedOutTicketDoesNothing) {
  Outcome a, b, c;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  const KvAdmission::Ticket b_ticket = admission_->Admit(3 * kBlock, Later(), b.Done());
  scheduler_.Advance(kQueueWait);
  ASSERT_EQ(b.status->code(), absl::StatusCode::kResourceExhausted);
  const KvAdmission::Ticket c_ticket = admission_->Admit(3 * kBlock, Later(), c.Done());

  EXPECT_FALSE(admission_->Withdraw(b_ticket));
  EXPECT_FALSE(admission_->Withdraw(c_ticket + 1000));
  EXPECT_EQ(b.status->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(c.pending());
  EXPECT_EQ(admission_->queue_depth(), 1u);
  admission_->Release(8 * kBlock);  // c must not outlive the test (as a waiter)
  EXPECT_TRUE(c.admitted());
}

TEST_F(KvAdmissionTest, AProjectionLargerThanTheWholeLimitIsRefusedAtOnce) {
  Outcome oversize;
  admission_->Admit(10 * kBlock + 1, Later(), oversize.Done());  // even with nothing in flight
  ASSERT_FALSE(oversize.pending());
  EXPECT_EQ(oversize.status->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(
      oversize.status->message(),
      AllOf(HasSubstr("backend \"gpu-a\""), HasSubstr("of 160001 bytes"),
            HasSubstr("admission limit of 160000 bytes"), HasSubstr("can never be admitted")));
  EXPECT_EQ(tracker_.held_bytes(), 0u);
  Outcome exact;
  admission_->Admit(10 * kBlock, Later(), exact.Done());
  EXPECT_TRUE(exact.admitted());
}

TEST_F(KvAdmissionTest, AWaiterThatNoLongerFitsTheShrunkCapacityIsRefused) {
  Outcome a, b;
  admission_->Admit(5 * kBlock, Later(), a.Done());
  admission_->Admit(8 * kBlock, Later(), b.Done());
  tracker_.SetCapacity(6 * kBlock);  // a reload
  EXPECT_THAT(b.status->message(), HasSubstr("can never be admitted"));
}

TEST_F(KvAdmissionTest, AGrownCapacityAdmitsWaiters) {
  Outcome a, b;
  admission_->Admit(8 * kBlock, Later(), a.Done());
  admission_->Admit(8 * kBlock, Later(), b.Done());
  EXPECT_TRUE(b.pending());
  tracker_.SetCapacity(16 * kBlock);
  EXPECT_TRUE(b.admitted());
}

TEST_F(KvAdmissionTest, AnAdmitRatioAboveOneOvercommits) {
  KvTracker tracker(10 * kBlock);
  KvAdmission admission(tracker, scheduler_, {.backend = "gpu-b", .admit_ratio = 1.5});
  EXPECT_EQ(admission.limit_bytes(), 15 * kBlock);
  Outcome a, b;
  admission.Admit(10 * kBlock, Later(), a.Done());
  admission.Admit(5 * kBlock, Later(), b.Done());
  EXPECT_TRUE(a.admitted());
  EXPECT_TRUE(b.admitted());
}

TEST_F(KvAdmissionTest, DestroyingTheAdmissionCancelsItsWaitersAndOutlivesItsTimers) {
  Outcome a, b;
  admission_->Admit(10 * kBlock, Later(), a.Done());
  admission_->Admit(kBlock, Later(), b.Done());
  admission_.reset();
  ASSERT_FALSE(b.pending());
  EXPECT_EQ(b.status->code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(scheduler_.pending(), 1u);
  scheduler_.Advance(absl::Hours(2));  // the orphaned timer finds nothing to do
  KvRequest kv = tracker_.Begin(1, kBytesPerToken);
  tracker_.End(kv);  // nor does an End, with no admission listening
}

TEST_F(KvAdmissionTest, ExportsTheQueueDepth) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  const KvBackendSeries series = metrics.AddBackend("gpu-c");
  KvTracker tracker(10 * kBlock, {.series = series});
  KvAdmission admission(tracker, scheduler_,
                        {.backend = "gpu-c", .queue_depth = series.admission_queue_depth});
  Outcome a, b, c, d;
  admission.Admit(10 * kBlock, Later(), a.Done());
  admission.Admit(kBlock, Later(), b.Done());
  const KvAdmission::Ticket c_ticket = admission.Admit(kBlock, Later(), c.Done());
  admission.Admit(kBlock, Later(), d.Done());
  EXPECT_EQ(series.admission_queue_depth->Value(), 3);
  admission.Withdraw(c_ticket);  // b and d stay: a still holds everything
  EXPECT_EQ(series.admission_queue_depth->Value(), 2);
  admission.Release(10 * kBlock);
  EXPECT_EQ(series.admission_queue_depth->Value(), 0);
  EXPECT_TRUE(b.admitted() && d.admitted());
}

TEST(KvAdmissionOptions, AreValidatedNamingTheField) {
  EXPECT_TRUE(ValidateKvAdmissionOptions({}).ok());
  EXPECT_THAT(ValidateKvAdmissionOptions({.backend = "b", .admit_ratio = 0}).message(),
              HasSubstr("admit_ratio: must be a finite number > 0, got 0"));
  EXPECT_THAT(ValidateKvAdmissionOptions({.backend = "b", .max_queue_wait = absl::ZeroDuration()})
                  .message(),
              HasSubstr("max_queue_wait: must be > 0"));
}

// Many threads admit, begin, stream and end at once: what the admitted requests hold never
// passes the limit, every waiter is admitted in the end (no lost wake-up), and all is returned.
TEST(KvAdmissionConcurrency, AdmittedRequestsNeverExceedTheLimitAndAllComplete) {
  FakeScheduler scheduler;  // never advanced: no timeouts
  KvTracker tracker(20 * kBlock);
  KvAdmission admission(tracker, scheduler,
                        {.backend = "gpu-a", .max_queue = 1000, .max_queue_wait = absl::Hours(1)});
  std::atomic<uint64_t> admitted_bytes{0};
  std::atomic<uint64_t> most_admitted_bytes{0};
  std::atomic<int> refused{0};
  constexpr int kThreads = 4;
  constexpr int kRequestsPerThread = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        const uint64_t prompt_tokens = 1 + (t * 7 + i * 13) % 100;
        const uint64_t max_tokens = 1 + (t * 5 + i * 11) % 120;
        const uint64_t projected =
            ((prompt_tokens + max_tokens + 15) / 16) * kBlock;  // at most 14 blocks
        absl::Notification admitted;
        absl::Status status;
        admission.Admit(projected, scheduler.Now() + absl::Hours(1), [&](absl::Status s) {
          status = std::move(s);
          admitted.Notify();
        });
        admitted.WaitForNotification();
        if (!status.ok()) {
          refused.fetch_add(1);
          continue;
        }
        const uint64_t now_admitted = admitted_bytes.fetch_add(projected) + projected;
        uint64_t most = most_admitted_bytes.load();
        while (now_admitted > most &&
               !most_admitted_bytes.compare_exchange_weak(most, now_admitted)) {
        }
        if (i % 10 == 0) {  // some fail before they begin
          admitted_bytes.fetch_sub(projected);
          admission.Release(projected);
          continue;
        }
        KvRequest kv = tracker.Begin(prompt_tokens, kBytesPerToken, projected);
        for (uint64_t generated = 1; generated <= max_tokens; generated += 3) {
          tracker.Update(kv, generated);
        }
        admitted_bytes.fetch_sub(projected);
        tracker.End(kv);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_LE(most_admitted_bytes.load(), 20 * kBlock);
  EXPECT_EQ(tracker.held_bytes(), 0u);
  EXPECT_EQ(tracker.live_bytes(), 0u);
  EXPECT_EQ(admission.queue_depth(), 0u);
}

// A withdrawal races the End that admits the waiter: `done` runs once, and Withdraw says truly
// whether it was the one that ran it.
TEST(KvAdmissionConcurrency, AWithdrawalRacingAnAdmissionEndsTheWaiterOnce) {
  FakeScheduler scheduler;
  KvTracker tracker(10 * kBlock);
  KvAdmission admission(tracker, scheduler, {.backend = "gpu-a"});
  int cancelled = 0;
  for (int i = 0; i < 200; ++i) {
    admission.Admit(10 * kBlock, scheduler.Now() + absl::Hours(1), [](absl::Status) {});
    KvRequest first = tracker.Begin(16, kBytesPerToken, 10 * kBlock);
    std::atomic<int> runs{0};
    absl::Status status;
    const KvAdmission::Ticket ticket =
        admission.Admit(kBlock, scheduler.Now() + absl::Hours(1), [&](absl::Status s) {
          status = std::move(s);
          runs.fetch_add(1);
        });
    bool withdrew = false;
    std::thread ender([&] { tracker.End(first); });
    std::thread withdrawer([&] { withdrew = admission.Withdraw(ticket); });
    ender.join();
    withdrawer.join();
    ASSERT_EQ(runs.load(), 1);
    EXPECT_EQ(withdrew, status.code() == absl::StatusCode::kCancelled) << status;
    if (status.ok()) admission.Release(kBlock);
    cancelled += withdrew ? 1 : 0;
    EXPECT_EQ(tracker.held_bytes(), 0u);
    EXPECT_EQ(admission.queue_depth(), 0u);
  }
  RecordProperty("withdrawals_that_won", cancelled);
}

}  // namespace
}  // namespace tollgate
