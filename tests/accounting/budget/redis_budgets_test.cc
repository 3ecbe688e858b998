#include "accounting/budget/redis_budgets.h"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "accounting/budget/redis_budget_scripts.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/budget/budget_test_util.h"
#include "tests/cache/redis_test_util.h"
#include "tests/common/redis_server.h"

namespace tollgate::budget_test {
namespace {

using testing::RedisCall;

const absl::Time kNoon = Utc(2025, 3, 14, 12);

using shared_budgets_internal::ParseReserveReply;
using shared_budgets_internal::ParseUsageReply;

RedisReply Str(std::string s) { return RedisReply::String(std::move(s)); }
RedisReply Int(int64_t i) { return RedisReply::Integer(i); }

TEST(SharedBudgetsReplies, ReadTheScriptsAnswers) {
  const auto held =
      ParseReserveReply(RedisReply::Array({Int(1), Int(0), Str("0"), Str("0"), Str("e1")}), 2);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->refused_by, 0u);
  EXPECT_EQ(held->epoch, "e1");
  const auto refused = ParseReserveReply(
      RedisReply::Array({Int(0), Int(2), Str("9223372036854775807"), Str("5"), Str("e1")}), 2);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->refused_by, 2u);
  EXPECT_EQ(refused->spent_nano_usd, INT64_MAX);
  EXPECT_EQ(refused->held_nano_usd, 5);
  const auto usage = ParseUsageReply(RedisReply::Array({Str("12"), Str("34")}));
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->spent_nano_usd, 12);
  EXPECT_EQ(usage->held_nano_usd, 34);
}

TEST(SharedBudgetsReplies, RejectEveryOtherShape) {
  const std::vector<RedisReply> bad_reserves = {
      RedisReply::Nil(),
      RedisReply::Error("ERR boom"),
      Int(1),
      RedisReply::Array({Int(1), Int(0), Str("0"), Str("0")}),                    // short
      RedisReply::Array({Int(1), Int(0), Str("0"), Str("0"), Str("e"), Int(0)}),  // long
      RedisReply::Array({Int(2), Int(0), Str("0"), Str("0"), Str("e")}),          // not 0 or 1
      RedisReply::Array({Int(0), Int(0), Str("0"), Str("0"), Str("e")}),          // no position
      RedisReply::Array({Int(0), Int(3), Str("0"), Str("0"), Str("e")}),          // past the end
      RedisReply::Array({Int(0), Int(-1), Str("0"), Str("0"), Str("e")}),
      RedisReply::Array({Int(1), Int(0), Str("x"), Str("0"), Str("e")}),   // not a number
      RedisReply::Array({Int(1), Int(0), Str("-5"), Str("0"), Str("e")}),  // negative
      RedisReply::Array({Int(1), Int(0), Str("99999999999999999999"), Str("0"), Str("e")}),
      RedisReply::Array({Int(1), Int(0), Int(0), Str("0"), Str("e")}),  // wrong type
      RedisReply::Array({Str("1"), Int(0), Str("0"), Str("0"), Str("e")}),
      RedisReply::Array({Int(1), Int(0), Str("0"), Str("0"), Int(7)}),
  };
  for (const RedisReply& reply : bad_reserves) {
    EXPECT_FALSE(ParseReserveReply(reply, 2).has_value()) << reply.DebugString();
  }
  for (const RedisReply& reply :
       {RedisReply::Nil(), RedisReply::Array({Str("1")}), RedisReply::Array({Str("1"), Int(2)}),
        RedisReply::Array({Str("1"), Str("2"), Str("3")}), RedisReply::Array({Str("a"), Str("2")}),
        RedisReply::Error("NOSCRIPT")}) {
    EXPECT_FALSE(ParseUsageReply(reply).has_value()) << reply.DebugString();
  }
}

// One Tollgate replica's view of the shared budgets: its own connection and its own instance.
struct Replica {
  std::unique_ptr<RedisClient> client;
  std::unique_ptr<SharedBudgets> budgets;
};

class SharedBudgetsTest : public testing::RedisServerTest {
 protected:
  Replica Connect(SharedBudgetsOptions options = {}, RedisOptions redis = {}) {
    if (redis.port == RedisOptions().port) redis = TestRedisOptions(server_->port());
    Replica replica;
    replica.client = NewRedisClient(redis);
    EXPECT_TRUE(replica.client->WaitUntilUp(kPatience));
    replica.budgets = NewSharedBudgets(replica.client.get(), std::move(options));
    return replica;
  }

  // The budget's usage once it satisfies `done` (settles do not wait), or the last one seen.
  SharedBudgetUsage UsageWhen(SharedBudgets& budgets, const BudgetSpec& spec,
                              const std::function<bool(const SharedBudgetUsage&)>& done,
                              absl::Time now = kNoon) {
    SharedBudgetUsage usage;
    WaitFor([&] {
      absl::StatusOr<SharedBudgetUsage> read = budgets.Usage(spec, now);
      if (read.ok()) usage = *read;
      return read.ok() && done(usage);
    });
    return usage;
  }

  int64_t SpentOnceSettled(SharedBudgets& budgets, const BudgetSpec& spec, int64_t spent,
                           absl::Time now = kNoon) {
    return UsageWhen(
               budgets, spec, [&](const SharedBudgetUsage& u) { return u.spent_nano_usd == spent; },
               now)
        .spent_nano_usd;
  }
};

TEST_F(SharedBudgetsTest, HoldsAndSettlesExactlyToTheNanoDollar) {
  Replica replica = Connect();
  const BudgetSpec daily = TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar);
  const std::vector<const BudgetSpec*> specs = {&daily};

  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve(specs, 1'234'567'891, kNoon);
  ASSERT_TRUE(hold.ok()) << hold.status();
  EXPECT_TRUE(hold->held());
  EXPECT_EQ(hold->nano_usd(), 1'234'567'891);
  absl::StatusOr<SharedBudgetUsage> usage = replica.budgets->Usage(daily, kNoon);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->held_nano_usd, 1'234'567'891);
  EXPECT_EQ(usage->spent_nano_usd, 0);

  replica.budgets->Settle(*std::move(hold), 1'234'567'890, kNoon);
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, daily, 1'234'567'890), 1'234'567'890);
  EXPECT_EQ(replica.budgets->Usage(daily, kNoon)->held_nano_usd, 0);

  // Exactly the rest of the limit fits; one nano-dollar more does not.
  const int64_t rest = 10 * kDollar - 1'234'567'890;
  EXPECT_EQ(replica.budgets->Reserve(specs, rest + 1, kNoon).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(replica.budgets->Reserve(specs, rest, kNoon).ok());
}

TEST_F(SharedBudgetsTest, ARefusalReadsExactlyLikeTheLocalBooks) {
  const BudgetSpec daily = TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar);
  const BudgetSpec key = KeyBudget("ci-key", kKey, BudgetWindow::kTotal, kDollar);
  auto book = MustBuild({daily, key});
  book->AddSpent("acme", "", 9'980'000'000, kNoon);
  auto local_hold = book->Reserve("acme", "", 20'000'000, kNoon);
  ASSERT_TRUE(local_hold.ok());

  Replica replica = Connect();
  const std::vector<const BudgetSpec*> specs = book->SpecsFor("acme", "");
  auto spend = replica.budgets->Reserve(specs, 9'980'000'000, kNoon);
  ASSERT_TRUE(spend.ok()) << spend.status();
  replica.budgets->Settle(*std::move(spend), 9'980'000'000, kNoon);
  SpentOnceSettled(*replica.budgets, daily, 9'980'000'000);
  auto shared_hold = replica.budgets->Reserve(specs, 20'000'000, kNoon);
  ASSERT_TRUE(shared_hold.ok()) << shared_hold.status();

  const absl::Status local = book->Reserve("acme", "", 10'000'000, kNoon).status();
  const absl::Status shared = replica.budgets->Reserve(specs, 10'000'000, kNoon).status();
  EXPECT_EQ(shared.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(shared.message(), local.message());

  const std::vector<const BudgetSpec*> key_specs = book->SpecsFor("", kKey);
  EXPECT_EQ(replica.budgets->Reserve(key_specs, 2 * kDollar, kNoon).status(),
            book->Reserve("", kKey, 2 * kDollar, kNoon).status());
}

TEST_F(SharedBudgetsTest, HoldsOnEveryBudgetOrOnNone) {
  Replica replica = Connect();
  const BudgetSpec tenant = TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar);
  const BudgetSpec key = KeyBudget("ci-key", kKey, BudgetWindow::kMonthly, kDollar);
  const std::vector<const BudgetSpec*> both = {&tenant, &key};

  const absl::Status refused = replica.budgets->Reserve(both, 2 * kDollar, kNoon).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("budget \"ci-key\""));
  EXPECT_EQ(replica.budgets->Usage(tenant, kNoon)->held_nano_usd, 0);

  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve(both, kDollar / 2, kNoon);
  ASSERT_TRUE(hold.ok()) << hold.status();
  EXPECT_EQ(replica.budgets->Usage(tenant, kNoon)->held_nano_usd, kDollar / 2);
  EXPECT_EQ(replica.budgets->Usage(key, kNoon)->held_nano_usd, kDollar / 2);
}

TEST_F(SharedBudgetsTest, RequestsWithoutBudgetsAndNegativeAmounts) {
  Replica replica = Connect();
  absl::StatusOr<SharedHold> none = replica.budgets->Reserve({}, kDollar, kNoon);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->held());
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  EXPECT_EQ(replica.budgets->Reserve({&daily}, -1, kNoon).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SharedBudgetsTest, ComparesExactlyBeyondWhatADoubleHolds) {
  Replica replica = Connect();
  // 2^53 + 1 nano-USD: as a double it would round to 2^53.
  const int64_t limit = (int64_t{1} << 53) + 1;
  const BudgetSpec total = TenantBudget("big", "acme", BudgetWindow::kTotal, limit);
  absl::StatusOr<SharedHold> most = replica.budgets->Reserve({&total}, int64_t{1} << 53, kNoon);
  absl::StatusOr<SharedHold> last = replica.budgets->Reserve({&total}, 1, kNoon);
  ASSERT_TRUE(most.ok() && last.ok());
  EXPECT_EQ(replica.budgets->Reserve({&total}, 1, kNoon).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(replica.budgets->Usage(total, kNoon)->held_nano_usd, limit);
}

TEST_F(SharedBudgetsTest, TwoReplicasUnderConcurrentLoadNeverOverspend) {
  constexpr int64_t kReservation = 7 * kDollar / 100;  // $0.07
  constexpr int kFits = 150;
  constexpr int kThreads = 8;
  constexpr int kAttempts = 100;
  const BudgetSpec shared =
      TenantBudget("shared", "acme", BudgetWindow::kDaily, kFits * kReservation);
  Replica replicas[2] = {Connect({.replica_id = "a"}), Connect({.replica_id = "b"})};

  std::atomic<int> accepted = 0;
  std::atomic<int> refused = 0;
  std::atomic<int> failed = 0;
  std::atomic<bool> running = true;
  std::atomic<int64_t> worst_seen = 0;
  std::thread monitor([&] {
    while (running) {
      absl::StatusOr<SharedBudgetUsage> usage = replicas[0].budgets->Usage(shared, kNoon);
      if (usage.ok()) {
        const int64_t total = usage->spent_nano_usd + usage->held_nano_usd;
        worst_seen = std::max<int64_t>(worst_seen, total);
      }
    }
  });
  absl::Mutex mu;
  std::vector<std::pair<SharedBudgets*, SharedHold>> kept;  // held until the end
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      SharedBudgets& budgets = *replicas[t % 2].budgets;
      for (int i = 0; i < kAttempts; ++i) {
        absl::StatusOr<SharedHold> hold = budgets.Reserve({&shared}, kReservation, kNoon);
        if (hold.ok()) {
          ++accepted;
          if (i % 2 == 0) {
            budgets.Settle(*std::move(hold), kReservation, kNoon);
          } else {
            absl::MutexLock lock(&mu);
            kept.emplace_back(&budgets, *std::move(hold));
          }
        } else if (absl::IsResourceExhausted(hold.status())) {
          ++refused;
        } else {
          ++failed;
          ADD_FAILURE() << hold.status();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  running = false;
  monitor.join();

  EXPECT_EQ(failed, 0);
  EXPECT_EQ(accepted, kFits);
  EXPECT_EQ(refused, kThreads * kAttempts - kFits);
  EXPECT_LE(worst_seen, kFits * kReservation);
  for (auto& [budgets, hold] : kept) budgets->Settle(std::move(hold), kReservation, kNoon);
  EXPECT_EQ(SpentOnceSettled(*replicas[1].budgets, shared, kFits * kReservation),
            kFits * kReservation);
  EXPECT_EQ(replicas[1].budgets->Usage(shared, kNoon)->held_nano_usd, 0);
}

TEST_F(SharedBudgetsTest, ADroppedHoldReleasesItsAmount) {
  Replica replica = Connect();
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  {
    absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, kDollar, kNoon);
    ASSERT_TRUE(hold.ok()) << hold.status();
    SharedHold moved = *std::move(hold);  // the moved-from one holds nothing
    EXPECT_FALSE(hold->held());           // NOLINT(bugprone-use-after-move): what a move leaves
  }
  UsageWhen(*replica.budgets, daily,
            [](const SharedBudgetUsage& u) { return u.held_nano_usd == 0; });
  EXPECT_EQ(replica.budgets->Usage(daily, kNoon)->spent_nano_usd, 0);
  EXPECT_TRUE(replica.budgets->Reserve({&daily}, kDollar, kNoon).ok());
}

TEST_F(SharedBudgetsTest, ASettleCountsInTheWindowItFallsIn) {
  Replica replica = Connect();
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, 10 * kDollar);
  const absl::Time before_midnight = Utc(2025, 3, 14, 23, 59, 59);
  const absl::Time after_midnight = Utc(2025, 3, 15, 0, 0, 1);
  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, kDollar, before_midnight);
  ASSERT_TRUE(hold.ok()) << hold.status();
  replica.budgets->Settle(*std::move(hold), kDollar / 4, after_midnight);
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, daily, kDollar / 4, after_midnight), kDollar / 4);
  const SharedBudgetUsage old_day = *replica.budgets->Usage(daily, before_midnight);
  EXPECT_EQ(old_day.spent_nano_usd, 0);
  EXPECT_EQ(old_day.held_nano_usd, 0);
}

TEST_F(SharedBudgetsTest, DatedWindowsExpireAfterRetentionAndTotalsNever) {
  Replica replica = Connect({.retention = absl::Hours(48)});
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  const BudgetSpec monthly = TenantBudget("m", "acme", BudgetWindow::kMonthly, kDollar);
  const BudgetSpec total = TenantBudget("t", "acme", BudgetWindow::kTotal, kDollar);
  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily, &monthly, &total}, 1, kNoon);
  ASSERT_TRUE(hold.ok()) << hold.status();
  const auto pttl_ms = [&](const std::string& key) {
    int64_t ms = -3;
    absl::StatusOr<std::string> reply = RedisCall(server_->port(), {"PTTL", key});
    if (reply.ok()) {
      EXPECT_TRUE(absl::SimpleAtoi(*reply, &ms)) << *reply;
    }
    return ms;
  };
  const int64_t day_left = absl::ToInt64Milliseconds(absl::Hours(12 + 48));
  EXPECT_GT(pttl_ms("tollgate:budget:d:daily:2025-03-14"), day_left - 60'000);
  EXPECT_LE(pttl_ms("tollgate:budget:d:daily:2025-03-14"), day_left);
  EXPECT_GT(pttl_ms("tollgate:budget:d:daily:2025-03-14:holds"), day_left - 60'000);
  const int64_t month_left = absl::ToInt64Milliseconds(Utc(2025, 4, 1) - kNoon + absl::Hours(48));
  EXPECT_LE(pttl_ms("tollgate:budget:m:monthly:2025-03"), month_left);
  EXPECT_GT(pttl_ms("tollgate:budget:m:monthly:2025-03"), month_left - 60'000);
  EXPECT_EQ(pttl_ms("tollgate:budget:t:total"), -1);  // exists, no expiry
}

TEST_F(SharedBudgetsTest, ScriptsFlushedFromRedisAreSentAgain) {
  Replica replica = Connect();
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  ASSERT_TRUE(replica.budgets->Reserve({&daily}, 1, kNoon).ok());
  ASSERT_TRUE(RedisCall(server_->port(), {"SCRIPT", "FLUSH"}).ok());
  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, 2, kNoon);
  ASSERT_TRUE(hold.ok()) << hold.status();
  ASSERT_TRUE(RedisCall(server_->port(), {"SCRIPT", "FLUSH"}).ok());
  replica.budgets->Settle(*std::move(hold), 2, kNoon);
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, daily, 2), 2);
}

// A replica that takes a hold and dies without settling it (or releasing it).
void ReserveAndCrash(int port, const BudgetSpec& spec, int64_t amount, absl::Duration hold_ttl) {
  std::unique_ptr<RedisClient> client = NewRedisClient(TestRedisOptions(port));
  if (!client->WaitUntilUp(kPatience)) _exit(2);
  std::unique_ptr<SharedBudgets> budgets =
      NewSharedBudgets(client.get(), {.replica_id = "crashed", .hold_ttl = hold_ttl});
  absl::StatusOr<SharedHold> hold = budgets->Reserve({&spec}, amount, kNoon);
  _exit(hold.ok() ? 0 : 3);
}

TEST_F(SharedBudgetsTest, HoldsOfACrashedReplicaExpireAfterHoldTtl) {
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  // Forked before this process starts any thread of its own.
  EXPECT_EXIT(ReserveAndCrash(server_->port(), daily, kDollar, absl::Seconds(1)),
              ::testing::ExitedWithCode(0), "");

  Replica survivor = Connect();
  EXPECT_EQ(survivor.budgets->Usage(daily, kNoon)->held_nano_usd, kDollar);
  EXPECT_EQ(survivor.budgets->Reserve({&daily}, 1, kNoon).status().code(),
            absl::StatusCode::kResourceExhausted);
  absl::StatusOr<SharedHold> after_expiry;
  EXPECT_TRUE(WaitFor([&] {
    after_expiry = survivor.budgets->Reserve({&daily}, kDollar, kNoon);
    return after_expiry.ok();
  }));
}

TEST_F(SharedBudgetsTest, ALateSettleOfAnExpiredHoldStillCountsOnce) {
  Replica replica = Connect({.hold_ttl = absl::Milliseconds(200)});
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, kDollar / 2, kNoon);
  ASSERT_TRUE(hold.ok()) << hold.status();
  UsageWhen(*replica.budgets, daily,
            [](const SharedBudgetUsage& u) { return u.held_nano_usd == 0; });
  replica.budgets->Settle(*std::move(hold), kDollar / 3, kNoon);
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, daily, kDollar / 3), kDollar / 3);
}

TEST_F(SharedBudgetsTest, RedisDownMeansUnavailableAtOnce) {
  Replica replica = Connect();  // 5 s command timeout: a quick answer is not a timeout
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(WaitFor([&] { return !replica.client->up(); }));
  const absl::Time start = absl::Now();
  EXPECT_EQ(replica.budgets->Reserve({&daily}, 1, kNoon).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(replica.budgets->Stats().unavailable, 1u);

  // A client that never reached Redis at all.
  RedisOptions dead = TestRedisOptions(server_->port());
  std::unique_ptr<RedisClient> client = NewRedisClient(dead);
  std::unique_ptr<SharedBudgets> budgets = NewSharedBudgets(client.get(), {});
  const absl::Time again = absl::Now();
  EXPECT_EQ(budgets->Reserve({&daily}, 1, kNoon).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - again, absl::Seconds(2));
}

TEST_F(SharedBudgetsTest, SettlesWaitForRedisAndReplayAfterARestart) {
  Replica replica = Connect();
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, 10 * kDollar);
  const BudgetSpec total = TenantBudget("t", "acme", BudgetWindow::kTotal, 10 * kDollar);
  absl::StatusOr<SharedHold> first = replica.budgets->Reserve({&daily, &total}, kDollar, kNoon);
  absl::StatusOr<SharedHold> second = replica.budgets->Reserve({&daily, &total}, kDollar, kNoon);
  ASSERT_TRUE(first.ok() && second.ok());

  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(WaitFor([&] { return !replica.client->up(); }));
  replica.budgets->Settle(*std::move(first), 300'000'000, kNoon);
  replica.budgets->Settle(*std::move(second), 200'000'000, kNoon);
  EXPECT_TRUE(WaitFor([&] { return replica.budgets->Stats().queued_settles == 2; }));

  // Restarted without persistence: the holds are gone, the settles must still count, once.
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(replica.client->WaitUntilUp(kPatience));
  replica.budgets->FlushQueued();
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, daily, 500'000'000), 500'000'000);
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, total, 500'000'000), 500'000'000);
  EXPECT_TRUE(WaitFor([&] { return replica.budgets->Stats().replayed_settles == 2; }));
  EXPECT_EQ(replica.budgets->Stats().queued_settles, 0u);
  replica.budgets->FlushQueued();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(replica.budgets->Usage(daily, kNoon)->spent_nano_usd, 500'000'000);
}

TEST_F(SharedBudgetsTest, ASettleRetriedAfterATimeoutCountsOnce) {
  RedisOptions redis = TestRedisOptions(server_->port());
  redis.command_timeout = absl::Milliseconds(200);
  redis.unresponsive_timeout = absl::Hours(1);  // the late original stays on the connection
  Replica replica = Connect({}, redis);
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, 10 * kDollar);
  absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, kDollar, kNoon);
  ASSERT_TRUE(hold.ok()) << hold.status();

  ASSERT_TRUE(server_->Pause().ok());
  replica.budgets->Settle(*std::move(hold), 700'000'000, kNoon);
  ASSERT_TRUE(WaitFor([&] { return replica.budgets->Stats().queued_settles == 1; }));
  ASSERT_TRUE(server_->Resume().ok());
  // The original runs when the server resumes; the replay then finds the hold gone.
  ASSERT_TRUE(WaitFor([&] {
    replica.budgets->FlushQueued();
    return replica.budgets->Stats().replayed_settles == 1;
  }));
  EXPECT_EQ(replica.budgets->Usage(daily, kNoon)->spent_nano_usd, 700'000'000);
  EXPECT_EQ(replica.budgets->Usage(daily, kNoon)->held_nano_usd, 0);
}

TEST_F(SharedBudgetsTest, AReserveThatTimedOutLeavesNoHoldBehind) {
  RedisOptions redis = TestRedisOptions(server_->port());
  redis.command_timeout = absl::Milliseconds(200);
  redis.unresponsive_timeout = absl::Hours(1);
  Replica replica = Connect({}, redis);
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, kDollar);
  ASSERT_TRUE(replica.budgets->Usage(daily, kNoon).ok());  // the scripts are loaded

  ASSERT_TRUE(server_->Pause().ok());
  EXPECT_EQ(replica.budgets->Reserve({&daily}, kDollar, kNoon).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server_->Resume().ok());
  // The reserve runs late and takes its hold; the release sent after the timeout follows it.
  EXPECT_TRUE(WaitFor([&] {
    absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, kDollar, kNoon);
    return hold.ok();
  }));
}

TEST_F(SharedBudgetsTest, TheSettleQueueIsBoundedDroppingTheOldest) {
  Replica replica = Connect({.max_queued_settles = 2});
  const BudgetSpec daily = TenantBudget("d", "acme", BudgetWindow::kDaily, 10 * kDollar);
  std::vector<SharedHold> holds;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<SharedHold> hold = replica.budgets->Reserve({&daily}, kDollar, kNoon);
    ASSERT_TRUE(hold.ok()) << hold.status();
    holds.push_back(*std::move(hold));
  }
  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(WaitFor([&] { return !replica.client->up(); }));
  for (int i = 0; i < 3; ++i)
    replica.budgets->Settle(std::move(holds[i]), int64_t{100} * (i + 1), kNoon);
  ASSERT_TRUE(WaitFor([&] { return replica.budgets->Stats().dropped_settles == 1; }));
  EXPECT_EQ(replica.budgets->Stats().queued_settles, 2u);
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(replica.client->WaitUntilUp(kPatience));
  EXPECT_TRUE(replica.budgets->Reserve({&daily}, 1, kNoon).ok());        // sends the queue again
  EXPECT_EQ(SpentOnceSettled(*replica.budgets, daily, 200 + 300), 500);  // the first was dropped
}

}  // namespace
}  // namespace tollgate::budget_test
