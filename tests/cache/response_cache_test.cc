#include "cache/response_cache.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

std::shared_ptr<const CachedResponse> Answer(std::vector<std::string> chunks,
                                             v1::FinishReason finish = v1::FINISH_REASON_STOP) {
  auto response = std::make_shared<CachedResponse>();
  response->chunks = std::move(chunks);
  response->finish_reason = finish;
  response->usage.set_output_tokens(3);
  return response;
}

// A clock that moves only when the test moves it. Single-threaded tests only.
struct ManualClock {
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  std::function<absl::Time()> AsFunction() {
    return [this] { return now; };
  }
};

// One shard, so which entry is the least recently used is the test's to decide.
ResponseCacheOptions OneShard(uint64_t capacity_bytes, ManualClock* clock) {
  ResponseCacheOptions options;
  options.capacity_bytes = capacity_bytes;
  options.max_entry_bytes = capacity_bytes;
  options.shards = 1;
  options.ttl = absl::Seconds(10);
  options.clock = clock->AsFunction();
  return options;
}

TEST(ResponseCache, ChargesKeyChunksAndAFixedOverhead) {
  // Short chunks live inside their strings: each costs its slot.
  auto answer = Answer({"hello", " world"});
  ASSERT_EQ(answer->chunks.capacity(), 2u);
  EXPECT_EQ(EntryChargeBytes("key", *answer), 3u + kEntryOverheadBytes + 2 * sizeof(std::string));
  // A longer one has a heap block: its text and terminator in 16-byte steps, plus a header.
  EXPECT_EQ(ChunkHeapBytes(std::string(15, 'x')), 0u);
  EXPECT_EQ(ChunkHeapBytes(std::string(16, 'x')), 32u + 16u);
  EXPECT_EQ(ChunkHeapBytes(std::string(1000, 'x')), 1008u + 16u);
  auto long_answer = Answer({std::string(1000, 'x')});
  EXPECT_EQ(EntryChargeBytes("k", *long_answer),
            1u + kEntryOverheadBytes + sizeof(std::string) + 1024u);
}

TEST(ResponseCache, HitSharesTheStoredResponse) {
  ManualClock clock;
  auto cache = NewResponseCache(OneShard(10'000, &clock));
  auto answer = Answer({"4"});
  EXPECT_EQ(cache->Lookup("k"), nullptr);
  ASSERT_TRUE(cache->Insert("k", answer));
  EXPECT_EQ(cache->Lookup("k").get(), answer.get());
  ResponseCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, EntryChargeBytes("k", *answer));
}

TEST(ResponseCache, EvictsLeastRecentlyUsedWhenOverBudget) {
  ManualClock clock;
  const std::string text(100, 'x');
  const uint64_t charge = EntryChargeBytes("k1", *Answer({text}));
  auto cache = NewResponseCache(OneShard(3 * charge, &clock));
  ASSERT_TRUE(cache->Insert("k1", Answer({text})));
  ASSERT_TRUE(cache->Insert("k2", Answer({text})));
  ASSERT_TRUE(cache->Insert("k3", Answer({text})));
  EXPECT_EQ(cache->Stats().bytes, 3 * charge);

  ASSERT_NE(cache->Lookup("k1"), nullptr);  // k2 is now the oldest unused
  ASSERT_TRUE(cache->Insert("k4", Answer({text})));
  EXPECT_EQ(cache->Lookup("k2"), nullptr);
  EXPECT_NE(cache->Lookup("k1"), nullptr);
  EXPECT_NE(cache->Lookup("k3"), nullptr);
  EXPECT_NE(cache->Lookup("k4"), nullptr);

  // A bigger entry pushes out as many as it needs, coldest first (k1, then k3).
  ASSERT_TRUE(cache->Insert("k5", Answer({text, text})));
  EXPECT_EQ(cache->Lookup("k1"), nullptr);
  EXPECT_EQ(cache->Lookup("k3"), nullptr);
  EXPECT_NE(cache->Lookup("k4"), nullptr);
  EXPECT_NE(cache->Lookup("k5"), nullptr);

  ResponseCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.evictions_size, 3u);
  EXPECT_EQ(stats.evictions_ttl, 0u);
  EXPECT_EQ(stats.entries, 2u);
  EXPECT_EQ(stats.bytes, charge + EntryChargeBytes("k5", *Answer({text, text})));
}

TEST(ResponseCache, ReplacingAKeyRechargesIt) {
  ManualClock clock;
  auto cache = NewResponseCache(OneShard(10'000, &clock));
  ASSERT_TRUE(cache->Insert("k", Answer({"short"})));
  auto longer = Answer({"a much longer answer"});
  ASSERT_TRUE(cache->Insert("k", longer));
  EXPECT_EQ(cache->Lookup("k").get(), longer.get());
  EXPECT_EQ(cache->Stats().entries, 1u);
  EXPECT_EQ(cache->Stats().bytes, EntryChargeBytes("k", *longer));
  EXPECT_EQ(cache->Stats().evictions_size, 0u);
}

TEST(ResponseCache, ExpiredEntryIsAMissAndIsRemoved) {
  ManualClock clock;
  auto cache = NewResponseCache(OneShard(10'000, &clock));
  ASSERT_TRUE(cache->Insert("k", Answer({"4"})));
  clock.now += absl::Seconds(9);
  EXPECT_NE(cache->Lookup("k"), nullptr);  // a hit does not extend the TTL
  clock.now += absl::Seconds(1);
  EXPECT_EQ(cache->Lookup("k"), nullptr);
  ResponseCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.evictions_ttl, 1u);
  EXPECT_EQ(stats.entries, 0u);
  EXPECT_EQ(stats.bytes, 0u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
}

TEST(ResponseCache, ExpiredEntryPushedOutForSpaceCountsAsTtlEviction) {
  ManualClock clock;
  const uint64_t charge = EntryChargeBytes("k1", *Answer({"x"}));
  auto cache = NewResponseCache(OneShard(charge, &clock));
  ASSERT_TRUE(cache->Insert("k1", Answer({"x"})));
  clock.now += absl::Seconds(10);
  ASSERT_TRUE(cache->Insert("k2", Answer({"y"})));
  ResponseCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.evictions_ttl, 1u);
  EXPECT_EQ(stats.evictions_size, 0u);
}

TEST(ResponseCache, RefusesOversizeEntries) {
  ManualClock clock;
  ResponseCacheOptions options = OneShard(10'000, &clock);
  options.max_entry_bytes = 1'000;
  auto cache = NewResponseCache(options);
  size_t fits = 16;  // the longest one-chunk text charged at most 1000 bytes under key "k"
  while (EntryChargeBytes("k", *Answer({std::string(fits + 1, 'a')})) <= 1'000) ++fits;
  auto just_fits = Answer({std::string(fits, 'a')});
  ASSERT_TRUE(cache->Insert("k", just_fits));
  EXPECT_FALSE(cache->Insert("k", Answer({std::string(fits, 'a'), "b"})));
  EXPECT_EQ(cache->Lookup("k").get(), just_fits.get());  // the stored entry is left alone
  EXPECT_EQ(cache->Stats().rejected, 1u);
}

TEST(ResponseCache, RefusesEntriesLargerThanAShard) {
  ManualClock clock;
  ResponseCacheOptions options = OneShard(4'000, &clock);
  options.shards = 4;  // 1'000 bytes each
  options.max_entry_bytes = 4'000;
  auto cache = NewResponseCache(options);
  EXPECT_FALSE(cache->Insert("k", Answer({std::string(1'000, 'a')})));
  EXPECT_TRUE(cache->Insert("k", Answer({std::string(500, 'a')})));
}

TEST(ResponseCache, RefusesUnfinishedAnswersEmptyKeysAndNull) {
  ManualClock clock;
  auto cache = NewResponseCache(OneShard(10'000, &clock));
  EXPECT_FALSE(cache->Insert("k", Answer({"partial"}, v1::FINISH_REASON_UNSPECIFIED)));
  EXPECT_FALSE(cache->Insert("", Answer({"4"})));
  EXPECT_FALSE(cache->Insert("k", nullptr));
  EXPECT_EQ(cache->Lookup("k"), nullptr);
  EXPECT_TRUE(cache->Insert("k", Answer({"truncated"}, v1::FINISH_REASON_LENGTH)));
  ResponseCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.rejected, 3u);
  EXPECT_EQ(stats.inserts, 1u);
}

TEST(ResponseCache, EraseRemovesAndUncharges) {
  ManualClock clock;
  auto cache = NewResponseCache(OneShard(10'000, &clock));
  ASSERT_TRUE(cache->Insert("k", Answer({"4"})));
  cache->Erase("k");
  cache->Erase("absent");
  EXPECT_EQ(cache->Lookup("k"), nullptr);
  EXPECT_EQ(cache->Stats().entries, 0u);
  EXPECT_EQ(cache->Stats().bytes, 0u);
}

TEST(ResponseCache, EvictedResponseStaysAliveForItsReader) {
  ManualClock clock;
  const uint64_t charge = EntryChargeBytes("k1", *Answer({"first"}));
  auto cache = NewResponseCache(OneShard(charge, &clock));
  ASSERT_TRUE(cache->Insert("k1", Answer({"first"})));
  auto held = cache->Lookup("k1");
  ASSERT_TRUE(cache->Insert("k2", Answer({"other"})));
  EXPECT_EQ(cache->Lookup("k1"), nullptr);
  EXPECT_EQ(held->chunks[0], "first");
}

TEST(ResponseCache, ConcurrentUseKeepsTotalsConsistent) {
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 20'000;
  constexpr int kKeys = 512;
  ResponseCacheOptions options;
  options.capacity_bytes = 64 * 1024;  // room for about a third of the keys: evictions happen
  options.max_entry_bytes = 4 * 1024;
  options.shards = 16;
  options.clock = [] { return absl::UnixEpoch(); };
  auto cache = NewResponseCache(options);

  std::vector<uint64_t> lookups(kThreads, 0), inserts(kThreads, 0), corrupt(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t state = 0x9e3779b97f4a7c15ull * (t + 1);
      for (int i = 0; i < kOpsPerThread; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const std::string key = absl::StrCat("key-", (state >> 33) % kKeys);
        if ((state >> 20) % 3 == 0) {
          cache->Insert(key, Answer({key, std::string((state >> 40) % 200, 'z')}));
          ++inserts[t];
        } else {
          ++lookups[t];
          if (auto hit = cache->Lookup(key); hit != nullptr && hit->chunks[0] != key) ++corrupt[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  uint64_t total_lookups = 0, total_inserts = 0, total_corrupt = 0;
  for (int t = 0; t < kThreads; ++t) {
    total_lookups += lookups[t];
    total_inserts += inserts[t];
    total_corrupt += corrupt[t];
  }
  EXPECT_EQ(total_corrupt, 0u);
  ResponseCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.hits + stats.misses, total_lookups);
  EXPECT_EQ(stats.inserts, total_inserts);
  EXPECT_GT(stats.evictions_size, 0u);
  EXPECT_LE(stats.bytes, options.capacity_bytes);

  // What the stats say is stored is what a lookup of every key finds.
  uint64_t found_entries = 0, found_bytes = 0;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = absl::StrCat("key-", k);
    if (auto hit = cache->Lookup(key)) {
      ++found_entries;
      found_bytes += EntryChargeBytes(key, *hit);
    }
  }
  EXPECT_EQ(stats.entries, found_entries);
  EXPECT_EQ(stats.bytes, found_bytes);
}

}  // namespace
}  // namespace tollgate
