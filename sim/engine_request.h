// Internal to the engine (included by engine.cc only): the state of one submitted request and the
// list of callbacks collected under the engine lock and delivered after it is released.
//
// A Request is created by Submit, then owned by exactly one of the engine's queues (in static mode,
// by a StaticCall in one of them). Its fields are written only under the engine mutex or, after
// the engine thread has stopped or in the synchronous path, by the single thread that owns it;
// callbacks are invoked without the lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sim/engine.h"
#include "sim/generator.h"
#include "sim/latency_model.h"

namespace tollgate::sim {

struct SimEngine::Request {
  RequestId id = 0;
  ModelShape shape;
  uint64_t prompt_tokens = 0;
  bool admitted = false;  // its prefill has been scheduled, so its prompt counts as spent
  // Static mode: unscaled solo seconds from its call's start to its next event.
  double static_next_seconds = 0;

  // Generate requests.
  SimOutput output;
  size_t emitted = 0;
  Callbacks callbacks;

  // Embed requests (on_embed_done is set).
  v1::EmbedResponse embed_response;
  std::function<void(absl::StatusOr<v1::EmbedResponse>)> on_embed_done;
  uint64_t longest_input_tokens = 0;

  bool is_embed() const { return on_embed_done != nullptr; }
  bool fully_emitted() const { return emitted >= output.tokens.size(); }
  // Tokens whose KV it holds while running, and what a (re)admission prefills.
  uint64_t kv_tokens() const { return prompt_tokens + emitted; }
  // `tokens` rounded up to whole blocks, in bytes.
  uint64_t KvBytes(uint64_t tokens) const {
    const uint64_t blocks = (tokens + kKvBlockTokens - 1) / kKvBlockTokens;
    return blocks * kKvBlockTokens * shape.KvBytesPerToken();
  }
  // What it needs to run one more step: its KV and the token the step adds. Embeds hold none.
  uint64_t StepKvBytes() const { return is_embed() ? 0 : KvBytes(kv_tokens() + 1); }
  // What it holds at its end (an answer of no tokens still takes a step).
  uint64_t FinalKvBytes() const {
    return is_embed() ? 0 : KvBytes(prompt_tokens + std::max<size_t>(output.tokens.size(), 1));
  }

  // Unscaled seconds from the start of its solo run to its first event (its first token, or an
  // embedding's end).
  double FirstEventSeconds(const LatencyModel& latency) const {
    if (is_embed()) return latency.PrefillSeconds(shape, longest_input_tokens);
    return latency.PrefillSeconds(shape, prompt_tokens) +
           latency.DecodeStepSeconds(shape, prompt_tokens);
  }
  // Unscaled seconds its solo run takes: t_1. Adds its decode steps in the order the events do,
  // so the last event lands exactly on it.
  double SoloSeconds(const LatencyModel& latency) const {
    double seconds = FirstEventSeconds(latency);
    for (size_t i = 1; !is_embed() && i < output.tokens.size(); ++i) {
      seconds += latency.DecodeStepSeconds(shape, prompt_tokens + i);
    }
    return seconds;
  }

  // The next token as a chunk; the first one reports the prompt size.
  // REQUIRES: !is_embed() && !fully_emitted().
  v1::GenerateResponse EmitNextToken() {
    v1::GenerateResponse chunk;
    chunk.set_text(output.tokens[emitted]);
    if (emitted == 0) {
      chunk.mutable_usage()->set_input_tokens(prompt_tokens);
      chunk.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
    }
    ++emitted;
    return chunk;
  }

  // Runs the final callback; the request must not be used afterwards.
  void Finish(const absl::Status& status) {
    if (is_embed()) {
      if (status.ok()) {
        on_embed_done(std::move(embed_response));
      } else {
        on_embed_done(status);
      }
      return;
    }
    v1::GenerateResponse last;
    if (status.ok()) last.set_finish_reason(output.finish_reason);
    v1::Usage* usage = last.mutable_usage();
    usage->set_input_tokens(admitted ? prompt_tokens : 0);
    usage->set_output_tokens(emitted);
    usage->set_source(v1::USAGE_SOURCE_REPORTED);
    callbacks.on_done(status, std::move(last));
  }
};

// Static mode: one call's items run together from `start`; an item's event is due at
// start + stretch × its static_next_seconds × time_scale, and the call holds the server until
// `end`.
struct SimEngine::StaticCall {
  std::vector<std::unique_ptr<Request>> items;
  uint32_t batch_size = 1;  // B: the items, or one embed request's inputs
  double stretch = 1;       // 1 + f × (B − 1)
  absl::Time start;
  absl::Time end;

  // When an event `unscaled_seconds` into a solo run is due in this call.
  absl::Time At(double unscaled_seconds, double time_scale) const {
    return start + absl::Seconds(stretch * unscaled_seconds * time_scale);
  }
};

struct SimEngine::Outbox {
  std::vector<std::pair<Request*, v1::GenerateResponse>> chunks;
  std::vector<std::pair<std::unique_ptr<Request>, absl::Status>> finished;

  void FinishAll(std::vector<std::unique_ptr<Request>>& requests, const absl::Status& status) {
    for (std::unique_ptr<Request>& request : requests) {
      finished.emplace_back(std::move(request), status);
    }
    requests.clear();
  }

  // Chunks first: a request finishing in this batch gets its last token before its on_done.
  void Deliver() {
    for (auto& [request, chunk] : chunks) {
      if (request->callbacks.on_chunk) request->callbacks.on_chunk(std::move(chunk));
    }
    chunks.clear();
    for (auto& [request, status] : finished) request->Finish(status);
    finished.clear();
  }
};

}  // namespace tollgate::sim
