// The Lua scripts of the shared budgets (see redis_budgets.h for the key layout and semantics),
// with their SHA-1 for EVALSHA.
//
//   Reserve  KEYS: epoch, then per budget: hash, holds, expired
//            ARGV: hold id, amount, hold ttl ms, retention ms, epoch candidate,
//                  then per budget: limit, key ttl ms (0: none)
//            → {1, 0, "0", "0", epoch} held on all, or {0, i, spent, held, epoch}: budget i (from
//            1)
//              refused
//   Settle   KEYS: epoch, then per budget: the hold window's hash, holds, expired and lost, and
//                  the settle window's hash
//            ARGV: hold id, hold epoch ("" if unknown), actual, retention ms,
//                  then per budget: settle hash ttl ms, lost ttl ms
//            → how many budgets it charged
//   Usage    KEYS: hash, holds, expired   ARGV: retention ms   → {spent, held}
//
// Amounts travel as decimal strings and are compared exactly (Lua's numbers are doubles).
//
// Thread safety: the scripts are immutable after first use; the parsers are pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "accounting/budget/redis_budgets.h"
#include "cache/redis_reply.h"

namespace tollgate::shared_budgets_internal {

struct LuaScript {
  std::string source;
  std::string sha1;  // lower-case hex
};

const LuaScript& ReserveScript();
const LuaScript& SettleScript();
const LuaScript& UsageScript();

// The reserve script's answer.
struct ReserveOutcome {
  size_t refused_by = 0;  // 0: held on every budget; else the refusing budget's position, from 1
  int64_t spent_nano_usd = 0;
  int64_t held_nano_usd = 0;
  std::string epoch;
};

// The scripts' replies come from outside (a script of another version, a proxy in between): any
// other shape, a negative or non-numeric amount, or a refusing position outside [1, budgets] is
// nullopt.
std::optional<ReserveOutcome> ParseReserveReply(const RedisReply& reply, size_t budgets);
std::optional<SharedBudgetUsage> ParseUsageReply(const RedisReply& reply);

}  // namespace tollgate::shared_budgets_internal
