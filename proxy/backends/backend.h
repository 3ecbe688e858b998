// The contract every backend adapter implements: start a generation, stream its events back,
// cancel it; and answer embedding requests.
//
// Streamed client calls are streamed from the backend, so that a call cut short (client cancel,
// deadline, reset) still reports every token generated before the cut. A unary client call may be
// made as one unary backend call (one message instead of one per token); cut short, it reports
// nothing and the pipeline estimates.
//
// Batched prompt completions (CompleteBatch): one backend call for several prompts that share the
// model and every sampling parameter, answered per prompt. Backends that cannot make such a call
// keep the default, which says so (SupportsCompleteBatch false, CompleteBatch UNIMPLEMENTED).
//
// Thread safety: Backend implementations are thread-safe and shared by all requests. Observer
// methods for one call are never invoked concurrently, but may run on any thread, including the
// caller's thread before Generate() returns.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
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

struct CompleteBatchCall {
  // The model (the backend's name), params and batch flag every prompt shares; its input unset.
  v1::GenerateRequest request;
  std::vector<std::string> prompts;  // at least one
  absl::Time deadline = absl::InfiniteFuture();
};

// The answer to one prompt of a batch.
struct BatchChoice {
  absl::Status status;  // not OK: this prompt failed on its own (no answer, or a malformed one)
  std::string text;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  std::optional<v1::Usage> usage;  // the prompt's own usage, when the backend reports it
};

struct CompleteBatchResult {
  std::vector<BatchChoice> choices;  // one per prompt, in the call's order
  std::optional<v1::Usage> usage;    // the whole call's, when the backend reports it
};

// A whole-call error (the backend unreachable, the call refused, the answer unreadable) fails
// every prompt; OK with exactly one choice per prompt otherwise.
using CompleteBatchCallback = std::function<void(absl::StatusOr<CompleteBatchResult>)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::string& name() const = 0;
  // The observer is kept alive until its OnDone has returned.
  virtual std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                                std::shared_ptr<GenerateObserver> observer) = 0;
  // `done` runs exactly once, on any thread, possibly before Embed returns.
  virtual void Embed(EmbedCall call, EmbedCallback done) = 0;

  // Whether CompleteBatch makes one backend call for a batch of prompts.
  virtual bool SupportsCompleteBatch() const { return false; }
  // `done` runs exactly once, on any thread, possibly before CompleteBatch returns. The answers are
  // whole (unary), never streamed.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): overrides take their call by value
  virtual void CompleteBatch(CompleteBatchCall /*call*/, CompleteBatchCallback done) {
    const CompleteBatchCallback answer = std::move(done);
    answer(absl::UnimplementedError(
        absl::StrCat("backend \"", name(), "\" cannot complete a batch of prompts")));
  }
};

}  // namespace tollgate
