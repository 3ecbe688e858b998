#include "accounting/budget/redis_budget_scripts.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"

namespace tollgate::shared_budgets_internal {
namespace {

// Shared by the scripts. Redis's TIME is the clock of hold expiry, so replicas' clocks do not
// matter to it.
constexpr std::string_view kPrelude = R"lua(
local INT64_MAX = '9223372036854775807'

local function nonneg(s)
  if not s or string.sub(s, 1, 1) == '-' then return '0' end
  return s
end

-- A non-negative decimal integer below 2^63 as two base-10^9 limbs, each exact in a double.
local function limbs(s)
  local n = #s
  if n <= 9 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end

-- Whether a + b + c > d, exactly.
local function exceeds(a, b, c, d)
  local ah, al = limbs(a)
  local bh, bl = limbs(b)
  local ch, cl = limbs(c)
  local dh, dl = limbs(d)
  local lo = al + bl + cl
  local hi = ah + bh + ch + math.floor(lo / 1000000000)
  lo = lo % 1000000000
  if hi ~= dh then return hi > dh end
  return lo > dl
end

-- For HINCRBY, which refuses "-0".
local function negated(s)
  if s == '0' then return '0' end
  return '-' .. s
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- ttl: milliseconds as a string, '0' for never.
local function expire(ttl, ...)
  if ttl == '0' then return end
  for _, key in ipairs({...}) do redis.call('PEXPIRE', key, ttl) end
end

-- Drops the expired holds of one window from `held`, keeping their ids for their late settles.
local function prune(hash, holds, expired, now, retention)
  local ids = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, id in ipairs(ids) do
    local amount = redis.call('HGET', hash, 'hold:' .. id)
    if amount then
      redis.call('HDEL', hash, 'hold:' .. id)
      redis.call('HINCRBY', hash, 'held', negated(amount))
      redis.call('ZADD', expired, now, id)
    end
  end
  if #ids > 0 then
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
    local ttl = redis.call('PTTL', hash)
    if ttl > 0 then redis.call('PEXPIRE', expired, ttl) end
  end
  redis.call('ZREMRANGEBYSCORE', expired, '-inf', now - retention)
end
)lua";

constexpr std::string_view kReserve = R"lua(
local id, amount = ARGV[1], ARGV[2]
local hold_ttl, retention = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[1], epoch)
end
local n = (#KEYS - 1) / 3
for i = 1, n do
  local hash = KEYS[3 * i - 1]
  prune(hash, KEYS[3 * i], KEYS[3 * i + 1], now, retention)
  local spent = nonneg(redis.call('HGET', hash, 'spent'))
  local held = nonneg(redis.call('HGET', hash, 'held'))
  if exceeds(spent, held, amount, ARGV[4 + 2 * i]) then
    return {0, i, spent, held, epoch}
  end
end
for i = 1, n do
  local hash, holds = KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HSET', hash, 'hold:' .. id, amount)
  redis.call('HINCRBY', hash, 'held', amount)
  redis.call('ZADD', holds, now + hold_ttl, id)
  expire(ARGV[5 + 2 * i], hash, holds, KEYS[3 * i + 1])
end
return {1, 0, '0', '0', epoch}
)lua";

constexpr std::string_view kSettle = R"lua(
local id, epoch, actual = ARGV[1], ARGV[2], ARGV[3]
local retention = tonumber(ARGV[4])
local now = now_ms()
local same_epoch = redis.call('GET', KEYS[1]) == epoch
local charged = 0
local n = (#KEYS - 1) / 5
for i = 1, n do
  local hash, holds, expired, lost = KEYS[5 * i - 3], KEYS[5 * i - 2], KEYS[5 * i - 1], KEYS[5 * i]
  local settle_hash = KEYS[5 * i + 1]
  local apply = false
  local amount = redis.call('HGET', hash, 'hold:' .. id)
  if amount then
    redis.call('HDEL', hash, 'hold:' .. id)
    redis.call('HINCRBY', hash, 'held', negated(amount))
    redis.call('ZREM', holds, id)
    apply = true
  elseif redis.call('ZREM', expired, id) == 1 then
    apply = true
  elseif not same_epoch and actual ~= '0' then
    -- The store lost the hold (restarted empty, failed over): charge once.
    apply = redis.call('ZADD', lost, 'NX', now, id) == 1
    redis.call('ZREMRANGEBYSCORE', lost, '-inf', now - retention)
    expire(ARGV[4 + 2 * i], lost)
  end
  if apply and actual ~= '0' then
    local spent = nonneg(redis.call('HGET', settle_hash, 'spent'))
    if exceeds(spent, actual, '0', INT64_MAX) then
      redis.call('HSET', settle_hash, 'spent', INT64_MAX)
    else
      redis.call('HINCRBY', settle_hash, 'spent', actual)
    end
    expire(ARGV[3 + 2 * i], settle_hash)
    charged = charged + 1
  end
end
return charged
)lua";

constexpr std::string_view kUsage = R"lua(
prune(KEYS[1], KEYS[2], KEYS[3], now_ms(), tonumber(ARGV[1]))
return {nonneg(redis.call('HGET', KEYS[1], 'spent')), nonneg(redis.call('HGET', KEYS[1], 'held'))}
)lua";

bool ParseAmount(const RedisReply& reply, int64_t* out) {
  return reply.type == RedisReply::Type::kString && absl::SimpleAtoi(reply.str, out) && *out >= 0;
}

LuaScript Make(std::string_view body) {
  LuaScript script;
  script.source = std::string(kPrelude);
  script.source.append(body);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.source.data()), script.source.size(), digest);
  script.sha1 = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  return script;
}

}  // namespace

const LuaScript& ReserveScript() {
  static const LuaScript* const script = new LuaScript(Make(kReserve));
  return *script;
}

const LuaScript& SettleScript() {
  static const LuaScript* const script = new LuaScript(Make(kSettle));
  return *script;
}

const LuaScript& UsageScript() {
  static const LuaScript* const script = new LuaScript(Make(kUsage));
  return *script;
}

std::optional<ReserveOutcome> ParseReserveReply(const RedisReply& reply, size_t budgets) {
  const std::vector<RedisReply>& fields = reply.elements;
  ReserveOutcome outcome;
  if (reply.type != RedisReply::Type::kArray || fields.size() != 5 ||
      fields[0].type != RedisReply::Type::kInteger ||
      fields[1].type != RedisReply::Type::kInteger || fields[4].type != RedisReply::Type::kString ||
      !ParseAmount(fields[2], &outcome.spent_nano_usd) ||
      !ParseAmount(fields[3], &outcome.held_nano_usd)) {
    return std::nullopt;
  }
  if (fields[0].integer == 0) {
    if (fields[1].integer < 1 || fields[1].integer > static_cast<int64_t>(budgets)) {
      return std::nullopt;
    }
    outcome.refused_by = static_cast<size_t>(fields[1].integer);
  } else if (fields[0].integer != 1) {
    return std::nullopt;
  }
  outcome.epoch = fields[4].str;
  return outcome;
}

std::optional<SharedBudgetUsage> ParseUsageReply(const RedisReply& reply) {
  SharedBudgetUsage usage;
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2 ||
      !ParseAmount(reply.elements[0], &usage.spent_nano_usd) ||
      !ParseAmount(reply.elements[1], &usage.held_nano_usd)) {
    return std::nullopt;
  }
  return usage;
}

}  // namespace tollgate::shared_budgets_internal
