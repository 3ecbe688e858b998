// The contract every backend adapter implements: start a generation, stream its events back,
// cancel it; and answer embedding requests.
//
// Streamed client calls are streamed from the backend, so that a call cut short (client cancel,
// deadline, reset) still reports every token generated before the cut. A unary client call may be
// made as one unary backend call (one message instead of one per token); cut short, it reports
// nothing and the pipeline estimates.
//
// Thread safety: Backend implementations are thread-safe and shared by all requests. Observer
// methods for one call are never invoked concurrently, but may run on any thread, including the
// caller's thread before Generate() returns.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/common/status_payloads.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

class GenerateObserver {
 public:
  virtual ~GenerateObserver() = default;
  // One message from the backend: a text delta, and possibly usage (partial early on, complete on
  // the last message) and a finish reason (on the last message).
  virtual void OnMessage(const v1::GenerateResponse& message) = 0;
  // Exactly once, after every OnMessage.
  virtual void OnDone(const absl::Status& status) = 0;
};

// Handle on a call in progress. Destroying it neither cancels nor waits.
class BackendCall {
 public:
  virtual ~BackendCall() = default;
  // Thread-safe and idempotent; OnDone (CANCELLED, or the real outcome if it won the race) follows.
  virtual void Cancel() = 0;
};

struct GenerateCall {
  v1::GenerateRequest request;  // model already rewritten to the backend's model name
  absl::Time deadline = absl::InfiniteFuture();
  bool client_streams = true;  // false: the client wants one answer, not deltas
};

struct EmbedCall {
  v1::EmbedRequest request;  // model already rewritten to the backend's model name
  absl::Time deadline = absl::InfiniteFuture();
};

using EmbedCallback = std::function<void(absl::StatusOr<v1::EmbedResponse>)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::string& name() const = 0;
  // The observer is kept alive until its OnDone has returned.
  virtual std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                                std::shared_ptr<GenerateObserver> observer) = 0;
  // `done` runs exactly once, on any thread, possibly before Embed returns.
  virtual void Embed(EmbedCall call, EmbedCallback done) = 0;
};

}  // namespace tollgate
