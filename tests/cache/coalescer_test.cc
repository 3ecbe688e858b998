#include "cache/coalescer.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

v1::GenerateResponse Chunk(const std::string& text) {
  v1::GenerateResponse chunk;
  chunk.set_text(text);
  return chunk;
}

v1::GenerateResponse Final() {
  v1::GenerateResponse final_message;
  final_message.set_finish_reason(v1::FINISH_REASON_STOP);
  final_message.mutable_usage()->set_output_tokens(3);
  return final_message;
}

// Records what it receives; thread-safe so the concurrency test can read it.
class RecordingObserver : public FlightObserver {
 public:
  void OnChunk(const v1::GenerateResponse& chunk) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(ends_, 0) << "chunk after the end";
    chunks_.push_back(chunk.text());
  }
  void OnEnd(const absl::Status& status, const v1::GenerateResponse& final_message) override {
    absl::MutexLock lock(&mu_);
    ++ends_;
    status_ = status;
    final_ = final_message;
  }

  std::vector<std::string> chunks() const {
    absl::MutexLock lock(&mu_);
    return chunks_;
  }
  int ends() const {
    absl::MutexLock lock(&mu_);
    return ends_;
  }
  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  v1::GenerateResponse final_message() const {
    absl::MutexLock lock(&mu_);
    return final_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> chunks_ ABSL_GUARDED_BY(mu_);
  int ends_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse final_ ABSL_GUARDED_BY(mu_);
};

TEST(Coalescer, SecondJoinOfAKeyFollowsTheFirst) {
  auto coalescer = NewCoalescer();
  RecordingObserver a, b;
  Coalescer::Joined first = coalescer->Join("k", &a);
  Coalescer::Joined second = coalescer->Join("k", &b);
  EXPECT_TRUE(first.leader);
  EXPECT_FALSE(second.leader);
  EXPECT_EQ(first.flight, second.flight);
  EXPECT_EQ(coalescer->OpenFlights(), 1u);
}

TEST(Coalescer, DifferentKeysAreIndependentFlights) {
  auto coalescer = NewCoalescer();
  RecordingObserver a, b;
  std::shared_ptr<Flight> k1 = coalescer->Join("k1", &a).flight;
  EXPECT_TRUE(coalescer->Join("k2", &b).leader);
  EXPECT_EQ(coalescer->OpenFlights(), 2u);

  k1->Publish(Chunk("one"));
  k1->Finish(absl::OkStatus(), Final());
  EXPECT_EQ(a.chunks(), std::vector<std::string>{"one"});
  EXPECT_EQ(a.ends(), 1);
  EXPECT_TRUE(b.chunks().empty());
  EXPECT_EQ(b.ends(), 0);
  EXPECT_EQ(coalescer->OpenFlights(), 1u);
}

TEST(Coalescer, FollowerAttachingMidStreamGetsEarlierChunksThenLiveOnes) {
  auto coalescer = NewCoalescer();
  RecordingObserver leader, follower;
  Coalescer::Joined joined = coalescer->Join("k", &leader);
  joined.flight->Publish(Chunk("The "));
  joined.flight->Publish(Chunk("answer"));

  ASSERT_FALSE(coalescer->Join("k", &follower).leader);
  EXPECT_EQ(follower.chunks(), (std::vector<std::string>{"The ", "answer"}));

  joined.flight->Publish(Chunk(" is 4."));
  joined.flight->Finish(absl::OkStatus(), Final());
  const std::vector<std::string> expected = {"The ", "answer", " is 4."};
  EXPECT_EQ(follower.chunks(), expected);
  EXPECT_EQ(leader.chunks(), expected);
  EXPECT_EQ(follower.final_message().finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(follower.final_message().usage().output_tokens(), 3u);
}

TEST(Coalescer, EveryPartyGetsTheEndOnce) {
  auto coalescer = NewCoalescer();
  RecordingObserver a, b, c;
  Coalescer::Joined joined = coalescer->Join("k", &a);
  coalescer->Join("k", &b);
  coalescer->Join("k", &c);
  joined.flight->Finish(absl::OkStatus(), Final());
  joined.flight->Finish(absl::InternalError("again"), Final());  // ignored
  joined.flight->Publish(Chunk("late"));                         // ignored
  for (RecordingObserver* observer : {&a, &b, &c}) {
    EXPECT_EQ(observer->ends(), 1);
    EXPECT_TRUE(observer->status().ok());
    EXPECT_TRUE(observer->chunks().empty());
  }
}

TEST(Coalescer, FailedCallEndsEveryPartyWithTheError) {
  auto coalescer = NewCoalescer();
  RecordingObserver a, b;
  Coalescer::Joined joined = coalescer->Join("k", &a);
  joined.flight->Publish(Chunk("partial"));
  coalescer->Join("k", &b);
  joined.flight->Finish(absl::UnavailableError("backend down"), v1::GenerateResponse());
  for (RecordingObserver* observer : {&a, &b}) {
    EXPECT_EQ(observer->ends(), 1);
    EXPECT_EQ(observer->status(), absl::UnavailableError("backend down"));
    EXPECT_EQ(observer->chunks(), std::vector<std::string>{"partial"});
  }
}

TEST(Coalescer, LeaderDetachingDoesNotCancelWhileAFollowerRemains) {
  auto coalescer = NewCoalescer();
  RecordingObserver leader, follower;
  Coalescer::Joined joined = coalescer->Join("k", &leader);
  int cancels = 0;
  joined.flight->SetCancel([&] { ++cancels; });
  coalescer->Join("k", &follower);

  EXPECT_FALSE(joined.flight->Detach(&leader));
  EXPECT_EQ(cancels, 0);
  joined.flight->Publish(Chunk("still going"));
  EXPECT_EQ(follower.chunks(), std::vector<std::string>{"still going"});
  EXPECT_TRUE(leader.chunks().empty());

  EXPECT_TRUE(joined.flight->Detach(&follower));
  EXPECT_EQ(cancels, 1);
  EXPECT_FALSE(joined.flight->Detach(&follower));  // already detached
  joined.flight->Finish(absl::CancelledError(), v1::GenerateResponse());
  EXPECT_EQ(cancels, 1);
  EXPECT_EQ(leader.ends(), 0);
  EXPECT_EQ(follower.ends(), 0);
  EXPECT_EQ(coalescer->OpenFlights(), 0u);
}

TEST(Coalescer, CancelSetAfterEveryoneLeftRunsAtOnce) {
  auto coalescer = NewCoalescer();
  RecordingObserver leader;
  Coalescer::Joined joined = coalescer->Join("k", &leader);
  EXPECT_TRUE(joined.flight->Detach(&leader));
  int cancels = 0;
  joined.flight->SetCancel([&] { ++cancels; });
  EXPECT_EQ(cancels, 1);
}

TEST(Coalescer, NoCancelAfterTheEnd) {
  auto coalescer = NewCoalescer();
  RecordingObserver leader;
  Coalescer::Joined joined = coalescer->Join("k", &leader);
  int cancels = 0;
  joined.flight->SetCancel([&] { ++cancels; });
  joined.flight->Finish(absl::OkStatus(), Final());
  EXPECT_FALSE(joined.flight->Detach(&leader));
  EXPECT_EQ(cancels, 0);
}

TEST(Coalescer, JoinAfterTheEndStartsANewFlight) {
  auto coalescer = NewCoalescer();
  RecordingObserver a, b;
  Coalescer::Joined first = coalescer->Join("k", &a);
  first.flight->Publish(Chunk("old"));
  first.flight->Finish(absl::OkStatus(), Final());
  EXPECT_EQ(coalescer->OpenFlights(), 0u);

  Coalescer::Joined second = coalescer->Join("k", &b);
  EXPECT_TRUE(second.leader);
  EXPECT_NE(first.flight, second.flight);
  EXPECT_TRUE(b.chunks().empty());
  EXPECT_EQ(b.ends(), 0);
}

TEST(Coalescer, JoinAfterEveryoneDetachedStartsANewFlight) {
  auto coalescer = NewCoalescer();
  RecordingObserver a, b;
  Coalescer::Joined first = coalescer->Join("k", &a);
  first.flight->Detach(&a);
  Coalescer::Joined second = coalescer->Join("k", &b);
  EXPECT_TRUE(second.leader);
  EXPECT_NE(first.flight, second.flight);
}

// Detaches itself from inside its first chunk callback.
class DetachOnFirstChunk : public RecordingObserver {
 public:
  void OnChunk(const v1::GenerateResponse& chunk) override {
    RecordingObserver::OnChunk(chunk);
    flight->Detach(this);
  }
  std::shared_ptr<Flight> flight;
};

TEST(Coalescer, ObserverMayDetachFromInsideACallback) {
  auto coalescer = NewCoalescer();
  RecordingObserver leader;
  DetachOnFirstChunk quitter;
  Coalescer::Joined joined = coalescer->Join("k", &leader);
  quitter.flight = joined.flight;
  joined.flight->Publish(Chunk("a"));
  coalescer->Join("k", &quitter);  // replays "a" and detaches inside Join
  joined.flight->Publish(Chunk("b"));
  joined.flight->Finish(absl::OkStatus(), Final());
  EXPECT_EQ(quitter.chunks(), std::vector<std::string>{"a"});
  EXPECT_EQ(quitter.ends(), 0);
  EXPECT_EQ(leader.chunks(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(leader.ends(), 1);
}

// Many threads join and sometimes detach on a few keys while one publisher per key streams.
// Every observer must see a prefix of the stream in order, then the end once if it stayed.
TEST(Coalescer, ConcurrentJoinsAndDetachesSeeAPrefixThenTheEnd) {
  constexpr int kKeys = 3;
  constexpr int kChunks = 200;
  constexpr int kJoinersPerKey = 8;
  auto coalescer = NewCoalescer();

  std::vector<RecordingObserver> leaders(kKeys);
  std::vector<std::shared_ptr<Flight>> flights;
  for (int k = 0; k < kKeys; ++k) {
    Coalescer::Joined joined = coalescer->Join(absl::StrCat("key", k), &leaders[k]);
    ASSERT_TRUE(joined.leader);
    flights.push_back(joined.flight);
  }

  struct Joiner {
    RecordingObserver observer;
    bool joined_first_flight = false;  // else a later flight that nobody feeds
    bool detached = false;
  };
  std::vector<std::unique_ptr<Joiner>> joiners;
  for (int i = 0; i < kKeys * kJoinersPerKey; ++i) joiners.push_back(std::make_unique<Joiner>());

  std::vector<std::thread> threads;
  for (int k = 0; k < kKeys; ++k) {
    threads.emplace_back([&, k] {
      for (int c = 0; c < kChunks; ++c) flights[k]->Publish(Chunk(absl::StrCat(c)));
      flights[k]->Finish(absl::OkStatus(), Final());
    });
  }
  for (int i = 0; i < kKeys * kJoinersPerKey; ++i) {
    threads.emplace_back([&, i] {
      Joiner& joiner = *joiners[i];
      Coalescer::Joined joined = coalescer->Join(absl::StrCat("key", i % kKeys), &joiner.observer);
      joiner.joined_first_flight = joined.flight == flights[i % kKeys];
      if (joiner.joined_first_flight) {
        EXPECT_FALSE(joined.leader);
      }
      if (i % 2 == 0) {
        joined.flight->Detach(&joiner.observer);
        joiner.detached = true;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  auto expect_prefix = [](const std::vector<std::string>& chunks) {
    for (size_t c = 0; c < chunks.size(); ++c) {
      ASSERT_EQ(chunks[c], absl::StrCat(c)) << "chunk " << c;
    }
  };
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(leaders[k].chunks().size(), static_cast<size_t>(kChunks));
    expect_prefix(leaders[k].chunks());
    EXPECT_EQ(leaders[k].ends(), 1);
  }
  for (const auto& joiner : joiners) {
    std::vector<std::string> chunks = joiner->observer.chunks();
    expect_prefix(chunks);
    if (joiner->detached) {
      EXPECT_LE(joiner->observer.ends(), 1);
    } else if (joiner->joined_first_flight) {  // stayed: the whole stream, then the end
      EXPECT_EQ(chunks.size(), static_cast<size_t>(kChunks));
      EXPECT_EQ(joiner->observer.ends(), 1);
    } else {  // arrived after the end: in a new flight that nobody feeds
      EXPECT_TRUE(chunks.empty());
      EXPECT_EQ(joiner->observer.ends(), 0);
    }
  }
}

}  // namespace
}  // namespace tollgate
