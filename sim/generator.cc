#include "sim/generator.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "sim/stable_hash.h"

namespace tollgate::sim {
namespace {

// Word pieces the simulator "speaks". Made up; only their variety and short length matter.
constexpr std::array<absl::string_view, 64> kVocabulary = {
    " the",    " cost",   " token", " model",  " request", " budget", " cache",  " tenant",
    " price",  " of",     " and",   " to",     " a",       " is",     " in",     " for",
    " per",    " each",   " GPU",   " memory", " batch",   " stream", " answer", " input",
    " output", " time",   " rate",  " limit",  " proxy",   " server", " key",    " value",
    " we",     " it",     " that",  " this",   " with",    " on",     " by",     " from",
    " count",  " charge", " spend", " dollar", " usage",   " ledger", " alert",  " metric",
    " fast",   " slow",   " large", " small",  " more",    " less",   " every",  " one",
    ",",       ".",       " ing",   " ed",     " s",       " er",     " ly",     "\n",
};

uint32_t CeilQuarter(size_t bytes) { return static_cast<uint32_t>((bytes + 3) / 4); }

uint64_t HashRequest(const v1::GenerateRequest& request) {
  StableHasher hasher;
  hasher.AddString(request.model());
  if (request.has_chat()) {
    hasher.AddByte('c');
    hasher.AddUint64(request.chat().messages_size());
    for (const v1::Message& message : request.chat().messages()) {
      hasher.AddString(message.role());
      hasher.AddString(message.content());
    }
  } else {
    hasher.AddByte('p');
    hasher.AddString(request.prompt());
  }
  const v1::SamplingParams& params = request.params();
  hasher.AddUint64(params.max_tokens());
  hasher.AddByte(params.has_temperature() ? 1 : 0);
  hasher.AddFloat(params.temperature());
  hasher.AddByte(params.has_top_p() ? 1 : 0);
  hasher.AddFloat(params.top_p());
  hasher.AddByte(params.has_seed() ? 1 : 0);
  hasher.AddUint64(static_cast<uint64_t>(params.seed()));
  hasher.AddUint64(params.stop_size());
  for (const std::string& stop : params.stop()) hasher.AddString(stop);
  return hasher.Digest();
}

// Cuts `tokens` just before the earliest occurrence of any non-empty stop string.
// Returns whether a stop string was found.
bool TruncateAtStop(const google::protobuf::RepeatedPtrField<std::string>& stops,
                    std::vector<std::string>& tokens) {
  std::string text;
  for (const std::string& token : tokens) text += token;
  size_t cut = std::string::npos;
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    cut = std::min(cut, text.find(stop));
  }
  if (cut == std::string::npos) return false;
  size_t start = 0;
  size_t kept = 0;
  for (; kept < tokens.size() && start + tokens[kept].size() <= cut; ++kept) {
    start += tokens[kept].size();
  }
  if (kept < tokens.size() && start < cut) {
    tokens[kept].resize(cut - start);
    ++kept;
  }
  tokens.resize(kept);
  return true;
}

}  // namespace

absl::Status ValidateRequest(const v1::GenerateRequest& request) {
  if (request.model().empty()) {
    return absl::InvalidArgumentError("GenerateRequest.model is empty");
  }
  if (request.input_case() == v1::GenerateRequest::INPUT_NOT_SET) {
    return absl::InvalidArgumentError("GenerateRequest has no input: set chat or prompt");
  }
  if (request.has_chat() && request.chat().messages().empty()) {
    return absl::InvalidArgumentError("GenerateRequest.chat has no messages");
  }
  if (request.params().max_tokens() > kMaxTokensLimit) {
    return absl::InvalidArgumentError(absl::StrCat("GenerateRequest.params.max_tokens ",
                                                   request.params().max_tokens(),
                                                   " exceeds the limit of ", kMaxTokensLimit));
  }
  return absl::OkStatus();
}

absl::Status ValidateEmbedRequest(const v1::EmbedRequest& request) {
  if (request.model().empty()) return absl::InvalidArgumentError("EmbedRequest.model is empty");
  if (request.inputs().empty()) return absl::InvalidArgumentError("EmbedRequest has no inputs");
  return absl::OkStatus();
}

uint32_t CountPromptTokens(const v1::GenerateRequest& request) {
  if (!request.has_chat()) return std::max<uint32_t>(1, CeilQuarter(request.prompt().size()));
  constexpr uint32_t kPerMessageOverhead = 4;
  constexpr uint32_t kReplyPrimer = 3;
  uint32_t tokens = kReplyPrimer;
  for (const v1::Message& message : request.chat().messages()) {
    tokens += CeilQuarter(message.content().size()) + kPerMessageOverhead;
  }
  return tokens;
}

uint32_t CountEmbedTokens(absl::string_view input) {
  return std::max<uint32_t>(1, CeilQuarter(input.size()));
}

SimOutput Generate(const v1::GenerateRequest& request) {
  const uint64_t hash = HashRequest(request);
  const uint32_t budget =
      request.params().max_tokens() == 0 ? kDefaultMaxTokens : request.params().max_tokens();
  const uint32_t natural = kMinAnswerTokens + static_cast<uint32_t>(hash % kAnswerTokenSpread);

  SimOutput output;
  output.prompt_tokens = CountPromptTokens(request);
  const uint32_t length = std::min(natural, budget);
  output.finish_reason = natural >= budget ? v1::FINISH_REASON_LENGTH : v1::FINISH_REASON_STOP;
  SplitMix64 rng(hash);
  output.tokens.reserve(length);
  for (uint32_t i = 0; i < length; ++i) {
    output.tokens.emplace_back(kVocabulary[rng.Next() % kVocabulary.size()]);
  }
  if (TruncateAtStop(request.params().stop(), output.tokens)) {
    output.finish_reason = v1::FINISH_REASON_STOP;
  }
  return output;
}

std::vector<float> Embed(absl::string_view model, absl::string_view input) {
  StableHasher hasher;
  hasher.AddString(model);
  hasher.AddString(input);
  SplitMix64 rng(hasher.Digest());
  std::vector<double> raw(kEmbeddingDimension);
  double norm_squared = 0;
  for (double& value : raw) {
    value = rng.NextUnit() * 2.0 - 1.0;
    norm_squared += value * value;
  }
  // Guards the (astronomically unlikely) all-zero draw.
  const double norm = norm_squared > 0 ? std::sqrt(norm_squared) : 1.0;
  std::vector<float> vector;
  vector.reserve(raw.size());
  for (double value : raw) vector.push_back(static_cast<float>(value / norm));
  return vector;
}

}  // namespace tollgate::sim
