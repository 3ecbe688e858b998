#include "proxy/request_accounting.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "accounting/gpu/shadow_pricing.h"
#include "accounting/ledger/ledger.h"
#include "accounting/metrics.h"
#include "accounting/tokenizer/chat.h"
#include "proxy/common/status_payloads.h"

namespace tollgate::pipeline_internal {
namespace {

LedgerRecord ToLedgerRecord(const Admission& a, const Ending& e, absl::Time now) {
  LedgerRecord r;
  r.request_id = a.request_id;
  r.time = now;
  r.tenant = a.caller.tenant.empty() ? std::string(kOtherLabel) : a.caller.tenant;
  r.key_id = a.caller.key_sha256;
  r.model = a.route.model != nullptr ? a.route.model->name : a.model;
  r.backend = std::string(e.backend);
  if (e.usage != nullptr) {
    r.input_tokens = e.usage->input_tokens();
    r.cached_input_tokens = e.usage->cached_input_tokens();
    r.cache_write_input_tokens = e.usage->cache_write_input_tokens();
    r.output_tokens = e.usage->output_tokens();
    r.reasoning_tokens = e.usage->reasoning_tokens();
    r.usage_source = std::string(UsageSourceLabel(e.usage->source()));
  }
  if (e.cost != nullptr) {
    r.total_nano_usd = e.cost->total_nano_usd();
    r.input_nano_usd = e.cost->input_nano_usd();
    r.cached_input_nano_usd = e.cost->cached_input_nano_usd();
    r.cache_write_nano_usd = e.cost->cache_write_nano_usd();
    r.output_nano_usd = e.cost->output_nano_usd();
    r.reasoning_nano_usd = e.cost->reasoning_nano_usd();
    r.gpu_nano_usd = e.cost->gpu_nano_usd();
  }
  r.cache_status = std::string(CacheStatusLabel(e.cache_status));
  r.saved_nano_usd = e.saved_nano_usd;
  r.latency = now - a.received;
  r.status = std::string(StatusLabel(e.code));
  return r;
}

}  // namespace

PromptTokens CountPrompt(const Tokenizer* tokenizer, const v1::GenerateRequest& request) {
  if (tokenizer == nullptr) {
    uint64_t bytes = request.prompt().size();
    for (const v1::Message& m : request.chat().messages()) bytes += m.content().size();
    return {EstimateTokens(bytes), false};
  }
  if (!request.has_chat()) return {tokenizer->Count(request.prompt()), true};
  std::vector<ChatMessageText> messages;
  messages.reserve(request.chat().messages_size());
  for (const v1::Message& m : request.chat().messages()) {
    messages.push_back({m.role(), m.content(), m.name()});
  }
  return {CountChatPromptTokens(*tokenizer, messages), true};
}

PromptTokens CountInputs(const Tokenizer* tokenizer, const v1::EmbedRequest& request) {
  uint64_t tokens = 0, bytes = 0;
  for (const std::string& input : request.inputs()) {
    if (tokenizer != nullptr) tokens += tokenizer->Count(input);
    bytes += input.size();
  }
  return tokenizer != nullptr ? PromptTokens{tokens, true}
                              : PromptTokens{EstimateTokens(bytes), false};
}

// A client whose deadline passes cancels the call itself (gRPC sends RST_STREAM), often a little
// before the server's own copy of the deadline fires, since that one counts from when the request
// arrived. A cancel that close to the deadline is the deadline.
constexpr absl::Duration kDeadlineSlack = absl::Milliseconds(250);

absl::Status ClientStatus(const absl::Status& status, absl::Time deadline) {
  if (status.code() == absl::StatusCode::kCancelled && absl::Now() >= deadline - kDeadlineSlack) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return status;
}

void RecordOutcome(const Admission& a, const Ending& e) {
  RequestOutcome outcome;
  outcome.code = e.code;
  const bool backend_paid =
      e.cache_status != v1::CACHE_STATUS_HIT && e.cache_status != v1::CACHE_STATUS_COALESCED;
  if (e.usage != nullptr && backend_paid) outcome.usage = *e.usage;
  if (a.cacheable) outcome.cache_status = e.cache_status;
  outcome.saved_nano_usd = e.saved_nano_usd;
  outcome.cost_nano_usd = e.cost != nullptr ? e.cost->total_nano_usd() : 0;
  const absl::Time now = absl::Now();
  outcome.duration = now - a.received;
  const BackendTiming* timing = e.timing;
  outcome.overhead =
      timing == nullptr ? outcome.duration : (timing->start - a.received) + (now - timing->done);
  outcome.time_to_first_token = timing == nullptr || timing->first_token == absl::InfiniteFuture()
                                    ? absl::Seconds(-1)
                                    : timing->first_token - a.received;
  a.snapshot->metrics->Record(a.tenant_index, a.model_index, outcome);
  if (e.usage != nullptr && backend_paid) {
    const std::vector<ShadowPlan>& plans = a.snapshot->config->shadow_plans;
    for (size_t i = 0; i < plans.size(); ++i) {
      a.snapshot->metrics->AddShadowCost(i, ShadowCostNanoUsd(plans[i], *e.usage));
    }
  }
  if (a.snapshot->ledger != nullptr) a.snapshot->ledger->Append(ToLedgerRecord(a, e, now));
}

// The most a request can cost at its model's prices: the prompt, all at the dearest input price,
// and `max_output` tokens at the dearer of the output and reasoning prices.
int64_t WorstCaseNanoUsd(const TokenPrices& base, uint64_t prompt_tokens, uint64_t max_output) {
  const TokenPrices& prices = PricesForInput(base, prompt_tokens);
  const int64_t input =
      std::max({prices.input_nano_usd_per_mtok, prices.cached_input_nano_usd_per_mtok,
                prices.cache_write_nano_usd_per_mtok});
  const int64_t output =
      std::max(prices.output_nano_usd_per_mtok, prices.reasoning_nano_usd_per_mtok);
  return TokensCostNanoUsd(prompt_tokens, input) + TokensCostNanoUsd(max_output, output);
}

// Output tokens a request may produce: its max_tokens, else the rest of its model's context, else
// the configured default.
uint64_t MaxOutputTokens(const Admission& a, uint32_t max_tokens, uint64_t prompt_tokens) {
  if (max_tokens > 0) return max_tokens;
  const uint32_t context = a.route.model->context_tokens;
  if (context > prompt_tokens) return context - prompt_tokens;
  return a.snapshot->config->default_max_tokens;
}

// Reserves the worst case against the caller's budgets; on refusal, records the request as
// rejected and returns the RESOURCE_EXHAUSTED naming the budget.
absl::StatusOr<BudgetHold> ReserveBudget(Admission& a, int64_t worst_case_nano_usd) {
  BudgetHold hold;
  if (a.snapshot->budgets == nullptr) return hold;
  const absl::Time now = absl::Now();
  absl::StatusOr<Reservation> local =
      a.snapshot->budgets->Reserve(a.caller.tenant, a.caller.key_sha256, worst_case_nano_usd, now);
  absl::Status refusal = local.status();
  if (local.ok() && a.snapshot->shared_budgets != nullptr) {
    const std::vector<const BudgetSpec*> specs =
        a.snapshot->budgets->SpecsFor(a.caller.tenant, a.caller.key_sha256);
    if (!specs.empty()) {
      absl::StatusOr<SharedHold> shared =
          a.snapshot->shared_budgets->Reserve(specs, worst_case_nano_usd, now);
      // Redis down or slow (UNAVAILABLE): the local book alone decides.
      if (shared.ok()) {
        hold.shared = *std::move(shared);
      } else if (absl::IsResourceExhausted(shared.status())) {
        refusal = shared.status();
      }
    }
  }
  if (!refusal.ok()) {
    a.status = refusal;
    // Which budget: the message names it; the payload marks the refusal as a budget's.
    a.status.SetPayload(kBudgetPayload, absl::Cord("budget"));
    RecordOutcome(a, {.code = a.status.code()});
    return a.status;  // `local`, if held, is released as it goes
  }
  hold.local = *std::move(local);
  return hold;
}

void SettleBudget(const Admission& a, BudgetHold& hold, int64_t cost_nano_usd) {
  if (a.snapshot->budgets == nullptr) return;
  const absl::Time now = absl::Now();
  a.snapshot->budgets->Settle(std::move(hold.local), cost_nano_usd, now);
  if (hold.shared.held() && a.snapshot->shared_budgets != nullptr) {
    a.snapshot->shared_budgets->Settle(std::move(hold.shared), cost_nano_usd, now);
  }
}

}  // namespace tollgate::pipeline_internal
