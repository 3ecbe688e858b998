// Internal to the engine (included by engine.cc only): the state of one submitted request and the
// list of callbacks collected under the engine lock and delivered after it is released.
//
// A Request is created by Submit, then owned by exactly one of the engine's queues. Its fields are
// written only under the engine mutex or, after the engine thread has stopped or in the
// synchronous path, by the single thread that owns it; callbacks are invoked without the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/engine.h"
#include "sim/generator.h"

namespace tollgate::sim {

struct SimEngine::Request {
  RequestId id = 0;
  ModelShape shape;
  uint64_t prompt_tokens = 0;
  bool admitted = false;  // its prefill has been scheduled, so its prompt counts as spent

  // Generate requests.
  SimOutput output;
  size_t emitted = 0;
  Callbacks callbacks;

  // Embed requests (on_embed_done is set).
  v1::EmbedResponse embed_response;
  std::function<void(absl::StatusOr<v1::EmbedResponse>)> on_embed_done;

  bool is_embed() const { return on_embed_done != nullptr; }
  bool fully_emitted() const { return emitted >= output.tokens.size(); }
  uint64_t kv_tokens() const { return prompt_tokens + emitted; }

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
