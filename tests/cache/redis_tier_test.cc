#include "cache/redis_tier.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/cache/redis_test_util.h"
#include "tests/common/redis_server.h"

namespace tollgate {
namespace {

using testing::RedisCall;

CachedResponse Answer() {
  CachedResponse response;
  response.chunks = {"Hel", "lo, w", std::string("\xe2\x82", 2), std::string("\xac\0!", 3)};
  response.finish_reason = v1::FINISH_REASON_STOP;
  response.usage.set_input_tokens(12);
  response.usage.set_cached_input_tokens(4);
  response.usage.set_output_tokens(5);
  response.usage.set_source(v1::USAGE_SOURCE_REPORTED);
  response.cost.set_total_nano_usd(1'234'567);
  response.cost.set_output_nano_usd(1'000'000);
  response.cost.set_energy_joules(0.25);
  response.stored = absl::FromUnixMicros(1'790'000'000'123'456);
  return response;
}

void ExpectSameAnswer(const CachedResponse& got, const CachedResponse& want) {
  EXPECT_EQ(got.chunks, want.chunks);
  EXPECT_EQ(got.finish_reason, want.finish_reason);
  EXPECT_EQ(got.usage.SerializeAsString(), want.usage.SerializeAsString());
  EXPECT_EQ(got.cost.SerializeAsString(), want.cost.SerializeAsString());
  EXPECT_EQ(got.stored, want.stored);
}

TEST(CachedResponseCodec, RoundTripsEveryFieldIncludingSplitUtf8) {
  absl::StatusOr<CachedResponse> decoded = DecodeCachedResponse(EncodeCachedResponse(Answer()));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameAnswer(*decoded, Answer());
}

TEST(CachedResponseCodec, EveryTruncationIsRefused) {
  const std::string value = EncodeCachedResponse(Answer());
  for (size_t length = 0; length < value.size(); ++length) {
    EXPECT_EQ(DecodeCachedResponse(value.substr(0, length)).status().code(),
              absl::StatusCode::kDataLoss)
        << "length " << length;
  }
}

TEST(CachedResponseCodec, TrailingBytesAndOtherVersionsAreRefused) {
  const std::string value = EncodeCachedResponse(Answer());
  EXPECT_FALSE(DecodeCachedResponse(value + "x").ok());
  for (int version : {0, 2, 255}) {
    std::string other = value;
    other[4] = static_cast<char>(version);
    absl::StatusOr<CachedResponse> decoded = DecodeCachedResponse(other);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(decoded.status().message().find("version"), absl::string_view::npos);
  }
  std::string foreign = value;
  foreign[0] = 'X';
  EXPECT_FALSE(DecodeCachedResponse(foreign).ok());
}

// A value with a valid header around `payload`.
std::string Framed(const std::string& payload) {
  std::string value = "TGCE";
  value.push_back(static_cast<char>(kCacheEntryFormatVersion));
  for (int shift = 0; shift < 32; shift += 8) {
    value.push_back(static_cast<char>(payload.size() >> shift));
  }
  return value + payload;
}

TEST(CachedResponseCodec, PayloadsThatDoNotParseOrNameNoFinishReasonAreRefused) {
  EXPECT_FALSE(DecodeCachedResponse(Framed("\xff\xff\xff")).ok());  // bad tag
  EXPECT_FALSE(DecodeCachedResponse(Framed("\x0a\x05"
                                           "ab"))
                   .ok());                                      // chunk longer than data
  EXPECT_FALSE(DecodeCachedResponse(Framed("")).ok());          // no finish reason
  EXPECT_FALSE(DecodeCachedResponse(Framed("\x10\x63")).ok());  // finish reason 99
  EXPECT_TRUE(DecodeCachedResponse(Framed("\x10\x01")).ok());   // STOP, nothing else
}

TEST(CachedResponseCodec, RandomBytesAreRefusedWithoutCrashing) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 5000; ++round) {
    std::string bytes(static_cast<size_t>(byte(rng)), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(rng));
    EXPECT_FALSE(DecodeCachedResponse(bytes).ok());
    // Behind a valid header, random payloads must not crash the decoder either; the few that
    // happen to parse into a finished answer are decodable by definition.
    DecodeCachedResponse(Framed(bytes)).IgnoreError();
  }
}

class RedisCacheTierTest : public testing::RedisServerTest {
 protected:
  void SetUp() override {
    RedisServerTest::SetUp();
    if (server_ == nullptr) return;  // skipped or failed
    client_ = NewRedisClient(TestRedisOptions(server_->port()), &metrics_);
    ASSERT_TRUE(client_->WaitUntilUp(kPatience));
    tier_ = NewRedisCacheTier(client_.get(), {.ttl = absl::Minutes(10), .metrics = &metrics_});
  }

  // Get, waiting for the callback.
  std::shared_ptr<const CachedResponse> GetNow(const std::string& key) {
    absl::Notification done;
    std::shared_ptr<const CachedResponse> result;
    tier_->Get(key, [&](std::shared_ptr<const CachedResponse> hit) {
      result = std::move(hit);
      done.Notify();
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(kPatience));
    return result;
  }

  // Puts and waits until the value is in Redis (Put does not wait).
  void PutNow(const std::string& key, const CachedResponse& response) {
    ASSERT_TRUE(tier_->Put(key, response));
    ASSERT_TRUE(WaitFor([&] {
      return RedisCall(server_->port(), {"GET", "tollgate:cache:" + key}).ok();
    }));
  }

  prometheus::Registry registry_;
  RedisMetrics metrics_{registry_, "test"};
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<RedisCacheTier> tier_;
};

TEST_F(RedisCacheTierTest, AStoredAnswerComesBackWhole) {
  PutNow("k1", Answer());
  std::shared_ptr<const CachedResponse> hit = GetNow("k1");
  ASSERT_NE(hit, nullptr);
  ExpectSameAnswer(*hit, Answer());
  EXPECT_EQ(GetNow("k2"), nullptr);
  const RedisCacheTierStats stats = tier_->Stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.puts, 1u);
  EXPECT_EQ(stats.errors, 0u);
}

TEST_F(RedisCacheTierTest, EntriesCarryTheTtlUnderTheKeyPrefix) {
  PutNow("k", Answer());
  absl::StatusOr<std::string> pttl = RedisCall(server_->port(), {"PTTL", "tollgate:cache:k"});
  ASSERT_TRUE(pttl.ok()) << pttl.status();
  int64_t ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*pttl, &ms)) << *pttl;
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, absl::ToInt64Milliseconds(absl::Minutes(10)));
}

TEST_F(RedisCacheTierTest, AnEntryExpiresAfterItsTtl) {
  tier_ = NewRedisCacheTier(client_.get(), {.ttl = absl::Milliseconds(200)});
  ASSERT_TRUE(tier_->Put("short", Answer()));
  EXPECT_TRUE(WaitFor([&] { return GetNow("short") == nullptr; }));
}

TEST_F(RedisCacheTierTest, RefusesUnfinishedOversizeAndKeylessAnswers) {
  CachedResponse unfinished = Answer();
  unfinished.finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  EXPECT_FALSE(tier_->Put("unfinished", unfinished));
  EXPECT_FALSE(tier_->Put("", Answer()));
  tier_ = NewRedisCacheTier(client_.get(), {.max_entry_bytes = 64});
  CachedResponse big = Answer();
  big.chunks.emplace_back(100, 'x');
  EXPECT_FALSE(tier_->Put("big", big));
  EXPECT_EQ(tier_->Stats().rejected, 1u);
  EXPECT_EQ(client_->CommandSync({"DBSIZE"})->integer, 0);
}

TEST_F(RedisCacheTierTest, MalformedStoredValuesAreCountedMissesNeverServed) {
  const std::string good = EncodeCachedResponse(Answer());
  std::string other_version = good;
  other_version[4] = 9;
  const std::vector<std::string> bad = {"random \x01\x02 bytes", good.substr(0, good.size() / 2),
                                        good.substr(0, 3),       other_version,
                                        good + "tail",           ""};
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string key = "bad" + std::to_string(i);
    ASSERT_TRUE(RedisCall(server_->port(), {"SET", "tollgate:cache:" + key, bad[i]}).ok());
    EXPECT_EQ(GetNow(key), nullptr) << i;
  }
  EXPECT_EQ(tier_->Stats().decode_errors, bad.size());
  EXPECT_EQ(CounterValue(registry_, "tollgate_redis_errors_total", "decode"),
            static_cast<double>(bad.size()));
  // A key of another type is an error reply (WRONGTYPE): a miss as well.
  ASSERT_TRUE(RedisCall(server_->port(), {"LPUSH", "tollgate:cache:list", "x"}).ok());
  EXPECT_EQ(GetNow("list"), nullptr);
  EXPECT_EQ(tier_->Stats().errors, 1u);
  EXPECT_EQ(tier_->Stats().hits, 0u);
}

TEST_F(RedisCacheTierTest, RedisDownIsAQuickMiss) {
  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(WaitFor([&] { return !client_->up(); }));
  const absl::Time start = absl::Now();
  EXPECT_EQ(GetNow("k"), nullptr);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));  // well under the 5 s command timeout
  EXPECT_TRUE(tier_->Put("k", Answer()));
  EXPECT_TRUE(WaitFor([&] { return tier_->Stats().errors == 2; }));
}

}  // namespace
}  // namespace tollgate
