#include "accounting/budget/redis_budgets.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accounting/budget/redis_budget_scripts.h"
#include "proxy/common/log.h"

namespace tollgate {
namespace shared_budgets_internal {
namespace {

// Queued settles sent again per round; the next round starts when a round has made progress.
constexpr size_t kReplayBatch = 256;

std::string RandomHex(size_t digits) {
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device());
  std::string hex;
  while (hex.size() < digits) hex += absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
  hex.resize(digits);
  return hex;
}

// The keys of budget `name`'s window at `t`, and when that window ends.
HeldBudget WindowOf(const std::string& prefix, const std::string& name, BudgetWindow window,
                    absl::Time t) {
  const auto [start, end] = BudgetWindowAt(window, t);
  std::string suffix = "total";
  if (window == BudgetWindow::kDaily) {
    suffix = absl::FormatTime("daily:%Y-%m-%d", start, absl::UTCTimeZone());
  } else if (window == BudgetWindow::kMonthly) {
    suffix = absl::FormatTime("monthly:%Y-%m", start, absl::UTCTimeZone());
  }
  return {name, window, absl::StrCat(prefix, name, ":", suffix), end};
}

// PEXPIRE for a window's keys, as the scripts take it: "0" for a running total (never).
std::string KeyTtlMs(absl::Time window_end, absl::Time now, absl::Duration retention) {
  if (window_end == absl::InfiniteFuture()) return "0";
  return absl::StrCat(
      std::max<int64_t>(absl::ToInt64Milliseconds(window_end - now + retention), 1));
}

std::vector<std::string> ScriptCommand(std::string verb, const std::string& body,
                                       std::vector<std::string> keys,
                                       std::vector<std::string> args) {
  std::vector<std::string> argv = {std::move(verb), body, absl::StrCat(keys.size())};
  argv.reserve(argv.size() + keys.size() + args.size());
  for (std::string& key : keys) argv.push_back(std::move(key));
  for (std::string& arg : args) argv.push_back(std::move(arg));
  return argv;
}

}  // namespace

// A settle with an actual cost, kept until Redis has taken it.
struct PendingSettle {
  std::string id;
  std::string epoch;
  int64_t actual_nano_usd = 0;
  absl::Time now;  // picks the window it counts in
  std::vector<HeldBudget> budgets;
  absl::Time created = absl::Now();  // a replay's key TTLs count the time spent queued
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(RedisClient* client, SharedBudgetsOptions options)
      : client_(client), options_(std::move(options)), epoch_candidate_(RandomHex(16)) {
    if (options_.replica_id.empty()) options_.replica_id = RandomHex(16);
    hold_ttl_ms_ = absl::StrCat(std::max<int64_t>(absl::ToInt64Milliseconds(options_.hold_ttl), 1));
    retention_ms_ = absl::StrCat(absl::ToInt64Milliseconds(options_.retention));
  }

  absl::StatusOr<SharedHold> Reserve(absl::Span<const BudgetSpec* const> budgets, int64_t amount,
                                     absl::Time now) {
    if (amount < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative worst-case cost: ", amount, " nano-USD"));
    }
    SharedHold hold;
    if (budgets.empty()) return hold;
    if (queued_.load(std::memory_order_relaxed) > 0) FlushQueued();

    hold.id_ = absl::StrCat(options_.replica_id, ":", next_sequence_.fetch_add(1));
    hold.nano_usd_ = amount;
    std::vector<std::string> keys = {EpochKey()};
    std::vector<std::string> args = {hold.id_, absl::StrCat(amount), hold_ttl_ms_, retention_ms_,
                                     epoch_candidate_};
    for (const BudgetSpec* spec : budgets) {
      HeldBudget window = WindowOf(options_.key_prefix, spec->name, spec->window, now);
      keys.insert(keys.end(),
                  {window.base_key, window.base_key + ":holds", window.base_key + ":expired"});
      args.push_back(absl::StrCat(spec->limit_nano_usd));
      args.push_back(KeyTtlMs(window.window_end, now, options_.retention));
      hold.budgets_.push_back(std::move(window));
    }

    absl::StatusOr<RedisReply> reply = RunSync(ReserveScript(), std::move(keys), std::move(args));
    if (!reply.ok() || reply->is_error()) {
      ++unavailable_;
      // A reply lost to a timeout may hide a hold that was taken: release it, best effort (it
      // expires anyway). While the client is down, nothing was sent.
      if (!reply.ok() && client_->up()) {
        Send(std::make_shared<PendingSettle>(PendingSettle{hold.id_, "", 0, now, hold.budgets_}));
      }
      return absl::UnavailableError(absl::StrCat(
          "shared budgets: ", reply.ok() ? reply->DebugString() : reply.status().message()));
    }
    const std::optional<ReserveOutcome> outcome = ParseReserveReply(*reply, budgets.size());
    if (!outcome) {
      ++unavailable_;
      return absl::UnavailableError(
          absl::StrCat("shared budgets: unexpected reserve reply ", reply->DebugString()));
    }
    if (outcome->refused_by > 0) {
      const BudgetSpec& refused = *budgets[outcome->refused_by - 1];
      return BudgetExhaustedError(refused, outcome->spent_nano_usd, outcome->held_nano_usd,
                                  refused.limit_nano_usd, amount);
    }
    hold.epoch_ = outcome->epoch;
    hold.core_ = shared_from_this();
    return hold;
  }

  // Settles `hold` on the SharedBudgets that issued it, taking its state: it holds nothing
  // afterwards. Nothing happens to a hold that holds nothing.
  static void Settle(SharedHold& hold, int64_t actual, absl::Time now) {
    if (hold.core_ == nullptr) return;
    const std::shared_ptr<Core> core = std::move(hold.core_);
    core->Send(std::make_shared<PendingSettle>(
        PendingSettle{std::move(hold.id_), std::move(hold.epoch_), std::max<int64_t>(actual, 0),
                      now, std::move(hold.budgets_)}));
  }

  absl::StatusOr<SharedBudgetUsage> Usage(const BudgetSpec& spec, absl::Time now) {
    const HeldBudget window = WindowOf(options_.key_prefix, spec.name, spec.window, now);
    absl::StatusOr<RedisReply> reply = RunSync(
        UsageScript(), {window.base_key, window.base_key + ":holds", window.base_key + ":expired"},
        {retention_ms_});
    if (!reply.ok()) return absl::UnavailableError(reply.status().message());
    std::optional<SharedBudgetUsage> usage = ParseUsageReply(*reply);
    if (!usage) {
      return absl::UnavailableError(
          absl::StrCat("shared budgets: unexpected usage reply ", reply->DebugString()));
    }
    return *usage;
  }

  void FlushQueued() {
    std::vector<std::shared_ptr<PendingSettle>> batch;
    {
      absl::MutexLock lock(&mu_);
      if (replaying_ > 0 || queue_.empty() || !client_->up()) return;
      const size_t n = std::min(queue_.size(), kReplayBatch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_.store(queue_.size(), std::memory_order_relaxed);
      replaying_ = batch.size();
      round_progress_ = false;
    }
    for (auto& settle : batch) Send(std::move(settle), /*replay=*/true);
  }

  SharedBudgetsStats Stats() const {
    absl::MutexLock lock(&mu_);
    return {queue_.size() + replaying_, replayed_, dropped_, unavailable_.load()};
  }

 private:
  std::string EpochKey() const { return options_.key_prefix + "epoch"; }

  // Runs the settle script for `settle`. One with an actual cost that Redis does not take is
  // queued; a release (0) is not.
  void Send(std::shared_ptr<PendingSettle> settle, bool replay = false) {
    std::vector<std::string> keys = {EpochKey()};
    std::vector<std::string> args = {settle->id, settle->epoch,
                                     absl::StrCat(settle->actual_nano_usd), retention_ms_};
    const absl::Time sent = settle->now + (absl::Now() - settle->created);
    for (const HeldBudget& budget : settle->budgets) {
      const HeldBudget now_window =
          WindowOf(options_.key_prefix, budget.name, budget.window, settle->now);
      keys.insert(keys.end(),
                  {budget.base_key, budget.base_key + ":holds", budget.base_key + ":expired",
                   budget.base_key + ":lost", now_window.base_key});
      args.push_back(KeyTtlMs(now_window.window_end, sent, options_.retention));
      args.push_back(KeyTtlMs(budget.window_end, sent, options_.retention));
    }
    RunAsync(SettleScript(), std::move(keys), std::move(args),
             [self = shared_from_this(), settle = std::move(settle),
              replay](absl::StatusOr<RedisReply> reply) {
               self->Settled(settle, replay, reply.ok() && !reply->is_error());
             });
  }

  void Settled(const std::shared_ptr<PendingSettle>& settle, bool replay, bool taken) {
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      if (!taken && settle->actual_nano_usd > 0) Enqueue(settle);
      if (replay) {
        if (taken) {
          ++replayed_;
          round_progress_ = true;
        }
        if (--replaying_ == 0) more = round_progress_ && !queue_.empty();
      } else {
        more = taken && !queue_.empty();
      }
    }
    if (more) FlushQueued();
  }

  void Enqueue(std::shared_ptr<PendingSettle> settle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.size() >= options_.max_queued_settles) {
      if (dropped_++ == 0 || queue_.empty()) {
        Log("shared budgets: settle queue full (", options_.max_queued_settles,
            "); dropping the oldest settles from the shared totals");
      }
      if (queue_.empty()) return;  // max_queued_settles == 0
      queue_.pop_front();
    }
    queue_.push_back(std::move(settle));
    queued_.store(queue_.size(), std::memory_order_relaxed);
  }

  absl::StatusOr<RedisReply> RunSync(const LuaScript& script, std::vector<std::string> keys,
                                     std::vector<std::string> args) {
    absl::StatusOr<RedisReply> reply =
        client_->CommandSync(ScriptCommand("EVALSHA", script.sha1, keys, args));
    if (reply.ok() && reply->HasErrorCode("NOSCRIPT")) {
      reply = client_->CommandSync(
          ScriptCommand("EVAL", script.source, std::move(keys), std::move(args)));
    }
    return reply;
  }

  void RunAsync(const LuaScript& script, std::vector<std::string> keys,
                std::vector<std::string> args, RedisClient::Callback done) {
    std::vector<std::string> evalsha = ScriptCommand("EVALSHA", script.sha1, keys, args);
    client_->Command(std::move(evalsha), [client = client_, &script, keys = std::move(keys),
                                          args = std::move(args), done = std::move(done)](
                                             absl::StatusOr<RedisReply> reply) mutable {
      if (reply.ok() && reply->HasErrorCode("NOSCRIPT")) {
        client->Command(ScriptCommand("EVAL", script.source, std::move(keys), std::move(args)),
                        std::move(done));
      } else {
        done(std::move(reply));
      }
    });
  }

  RedisClient* const client_;
  SharedBudgetsOptions options_;
  const std::string epoch_candidate_;
  std::string hold_ttl_ms_;
  std::string retention_ms_;
  std::atomic<uint64_t> next_sequence_ = 0;
  std::atomic<uint64_t> unavailable_ = 0;
  std::atomic<size_t> queued_ = 0;  // queue_.size(), read without the lock

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<PendingSettle>> queue_ ABSL_GUARDED_BY(mu_);
  size_t replaying_ ABSL_GUARDED_BY(mu_) = 0;  // sent again and not yet answered
  bool round_progress_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t replayed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shared_budgets_internal

namespace {

class SharedBudgetsImpl final : public SharedBudgets {
 public:
  SharedBudgetsImpl(RedisClient* client, SharedBudgetsOptions options)
      : core_(std::make_shared<shared_budgets_internal::Core>(client, std::move(options))) {}

  absl::StatusOr<SharedHold> Reserve(absl::Span<const BudgetSpec* const> budgets,
                                     int64_t amount_nano_usd, absl::Time now) override {
    return core_->Reserve(budgets, amount_nano_usd, now);
  }

  void Settle(SharedHold hold, int64_t actual_nano_usd, absl::Time now) override {
    shared_budgets_internal::Core::Settle(hold, actual_nano_usd, now);
  }

  absl::StatusOr<SharedBudgetUsage> Usage(const BudgetSpec& budget, absl::Time now) override {
    return core_->Usage(budget, now);
  }

  void FlushQueued() override { core_->FlushQueued(); }

  SharedBudgetsStats Stats() const override { return core_->Stats(); }

 private:
  const std::shared_ptr<shared_budgets_internal::Core> core_;
};

}  // namespace

SharedHold& SharedHold::operator=(SharedHold&& other) noexcept {
  if (this != &other) {
    Release();
    core_ = std::move(other.core_);
    id_ = std::move(other.id_);
    epoch_ = std::move(other.epoch_);
    nano_usd_ = other.nano_usd_;
    budgets_ = std::move(other.budgets_);
  }
  return *this;
}

SharedHold::~SharedHold() { Release(); }

void SharedHold::Release() { shared_budgets_internal::Core::Settle(*this, 0, absl::Now()); }

std::unique_ptr<SharedBudgets> NewSharedBudgets(RedisClient* client, SharedBudgetsOptions options) {
  return std::make_unique<SharedBudgetsImpl>(client, std::move(options));
}

}  // namespace tollgate
