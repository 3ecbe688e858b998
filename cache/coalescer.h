// The coalescer: identical cacheable requests in flight share one backend call.
//
// Requests are grouped by their cache key (CacheKey()). The first Join of a key is the leader: its
// caller starts the backend call and feeds the flight (Publish each chunk, then Finish). Later
// Joins of the same key, while the flight is open, are followers (the caller accounts them as
// `coalesced`). Every party, leader included, receives the flight through its FlightObserver: a
// party attaching mid-stream first gets every chunk produced so far, in order and with the original
// boundaries, then the live ones, then the end (OnEnd) exactly once.
//
// A party whose client goes away calls Detach; the backend call goes on while any party is left,
// and is cancelled (the function given to SetCancel runs, once) when the last one detaches before
// the end. A flight that ended or was cancelled is closed: it leaves the coalescer, and the next
// Join of its key makes a new leader.
//
// Example (leader):
//   Coalescer::Joined joined = coalescer->Join(key, &reactor);
//   if (joined.leader) {
//     joined.flight->SetCancel([call] { call->Cancel(); });
//     ...for each backend chunk: joined.flight->Publish(chunk);...
//     joined.flight->Finish(status, final_message);
//   }  // else: count as coalesced; chunks arrive through &reactor
//   ...on client cancel: joined.flight->Detach(&reactor);
//
// Threading contract. Coalescer and Flight have internal synchronization and may be used from any
// thread. Observer callbacks never run under an internal lock: they run on the thread that calls
// Publish or Finish, or on the thread that calls Join (the replay of the chunks so far). Each
// observer gets its callbacks one at a time and in order, never two at once. A callback may call
// Detach (its own observer's or another's), Publish or Join. After Detach(observer) returns, no
// callback to that observer is running or will start, unless Detach was called from inside one of
// that observer's own callbacks (which then returns and receives nothing more); so Detach may wait
// for a callback running on another thread, and must not be called while holding a lock that such
// a callback takes.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// Receives one flight. Must stay alive until it is detached or its OnEnd has returned.
class FlightObserver {
 public:
  virtual ~FlightObserver() = default;
  // A stream delta, in the order and with the boundaries the backend produced.
  virtual void OnChunk(const v1::GenerateResponse& chunk) = 0;
  // The end, exactly once unless detached first: the final message when `status` is OK.
  virtual void OnEnd(const absl::Status& status, const v1::GenerateResponse& final_message) = 0;
};

// One shared backend call.
class Flight {
 public:
  virtual ~Flight() = default;

  // Leader only. Appends a chunk and delivers it to every attached party. Ignored after the end.
  // REQUIRES: Publish and Finish are called in sequence (by one thread at a time).
  virtual void Publish(v1::GenerateResponse chunk) = 0;

  // Leader only. Ends the flight (OK with the final message, or the error) and closes it. Only
  // the first call counts.
  virtual void Finish(absl::Status status, v1::GenerateResponse final_message) = 0;

  // Leader only. How to cancel the backend call. Runs at most once, outside any lock, on the
  // thread of the last Detach (or here, if every party has already detached). Not run after the
  // end.
  virtual void SetCancel(std::function<void()> cancel) = 0;

  // The observer's client went away: it receives nothing more. An unknown or already detached
  // observer is ignored. Returns true when this was the last party and the flight was cancelled.
  virtual bool Detach(FlightObserver* observer) = 0;
};

class Coalescer {
 public:
  virtual ~Coalescer() = default;

  struct Joined {
    bool leader = false;  // false: a follower, accounted as coalesced
    std::shared_ptr<Flight> flight;
  };

  // Attaches `observer` to the open flight of `key`, or opens one with it as the leader. A
  // follower's replay of the chunks so far runs inside Join, on the caller's thread.
  // REQUIRES: observer != nullptr and not attached to another party of this flight.
  virtual Joined Join(const std::string& key, FlightObserver* observer) = 0;

  // Open flights.
  virtual size_t OpenFlights() const = 0;
};

std::unique_ptr<Coalescer> NewCoalescer();

}  // namespace tollgate
