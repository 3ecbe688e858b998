#include "bench/load_generator.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate::bench {
namespace {

using ::tollgate::v1::GenerateRequest;
using ::tollgate::v1::GenerateResponse;
using ::tollgate::v1::Inference;

// Latencies come from the monotonic clock, as nanoseconds since its epoch.
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepUntilNs(int64_t when_ns) {
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(when_ns))));
}

std::chrono::system_clock::time_point FromNow(absl::Duration duration) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(duration);
}

std::string CodeName(grpc::StatusCode code) {
  // gRPC and Abseil number their status codes identically.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", static_cast<int>(code)) : name;
}

constexpr absl::string_view kPromptFiller =
    "Summarise the toll receipts for the bridge crossing and list each vehicle class with its "
    "fare, the number of crossings and the total collected. ";

// What every in-flight call of one run shares. Calls hold it by shared_ptr, so a call abandoned
// after the drain timeout can still finish safely after RunLoad has returned.
// Thread safety: internally synchronized; called from the scheduler and gRPC callback threads.
class RunState : public std::enable_shared_from_this<RunState> {
 public:
  RunState(const LoadOptions& options, const std::shared_ptr<grpc::Channel>& channel,
           int64_t start_ns)
      : options_(options),
        stub_(Inference::NewStub(channel)),
        measure_start_ns_(start_ns + absl::ToInt64Nanoseconds(options.warmup)),
        end_ns_(measure_start_ns_ + absl::ToInt64Nanoseconds(options.duration)) {}

  int64_t end_ns() const { return end_ns_; }

  // Open loop: sends the request meant to leave at `intended_ns`, or drops it when
  // max_outstanding are in flight. False once max_requests have been scheduled.
  bool SendScheduled(int64_t intended_ns);
  // Closed loop: sends one more request unless the run is over.
  void SendNextIfRunning();
  // Blocks until nothing is in flight or `timeout` passes; returns how many still are.
  int64_t Drain(absl::Duration timeout);
  LoadReport TakeReport();

  // Called exactly once per sent request, from a gRPC callback.
  void Finish(int64_t intended_ns, int64_t first_message_ns, const grpc::Status& status);

  Inference::Stub& stub() { return *stub_; }
  void PrepareContext(grpc::ClientContext& context) const;

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; }
  // The next sequence number, or none when max_requests are used up.
  std::optional<uint64_t> NextSequence() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Send(int64_t intended_ns, uint64_t sequence);

  const LoadOptions options_;
  const std::unique_ptr<Inference::Stub> stub_;
  const int64_t measure_start_ns_;
  const int64_t end_ns_;

  absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_measured_done_ns_ ABSL_GUARDED_BY(mu_) = 0;
  LoadReport report_ ABSL_GUARDED_BY(mu_);
};

// What every call holds: the run, its context (prepared with key and deadline), the request, the
// response being read and the time the request was meant to leave.
class CallBase {
 protected:
  CallBase(std::shared_ptr<RunState> state, GenerateRequest request, int64_t intended_ns)
      : state_(std::move(state)), request_(std::move(request)), intended_ns_(intended_ns) {
    state_->PrepareContext(context_);
  }

  const std::shared_ptr<RunState> state_;
  grpc::ClientContext context_;
  const GenerateRequest request_;
  GenerateResponse response_;
  const int64_t intended_ns_;
};

// One unary call; deletes itself when its callback has run.
class UnaryCall : private CallBase {
 public:
  static void Start(std::shared_ptr<RunState> state, GenerateRequest request, int64_t intended_ns) {
    auto* call = new UnaryCall(std::move(state), std::move(request), intended_ns);
    call->state_->stub().async()->Generate(&call->context_, &call->request_, &call->response_,
                                           [call](grpc::Status status) {
                                             call->state_->Finish(call->intended_ns_, 0, status);
                                             delete call;
                                           });
  }

 private:
  using CallBase::CallBase;
};

// One server-streaming call; notes when the first message arrives and deletes itself in OnDone.
// gRPC runs its reactions one at a time, so the members need no lock.
class StreamCall final : public grpc::ClientReadReactor<GenerateResponse>, private CallBase {
 public:
  static void Start(std::shared_ptr<RunState> state, GenerateRequest request, int64_t intended_ns) {
    auto* call = new StreamCall(std::move(state), std::move(request), intended_ns);
    call->state_->stub().async()->GenerateStream(&call->context_, &call->request_, call);
    call->StartRead(&call->response_);
    call->StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    if (first_message_ns_ == 0) first_message_ns_ = NowNs();
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    state_->Finish(intended_ns_, first_message_ns_, status);
    delete this;
  }

 private:
  using CallBase::CallBase;

  int64_t first_message_ns_ = 0;
};

void RunState::PrepareContext(grpc::ClientContext& context) const {
  if (!options_.api_key.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.api_key));
  }
  context.set_deadline(FromNow(options_.deadline));
}

std::optional<uint64_t> RunState::NextSequence() {
  if (options_.max_requests > 0 && next_sequence_ >= static_cast<uint64_t>(options_.max_requests)) {
    return std::nullopt;
  }
  return next_sequence_++;
}

bool RunState::SendScheduled(int64_t intended_ns) {
  std::optional<uint64_t> sequence;
  {
    absl::MutexLock lock(&mu_);
    sequence = NextSequence();
    if (!sequence.has_value()) return false;
    if (in_flight_ >= options_.max_outstanding) {
      if (intended_ns >= measure_start_ns_) ++report_.dropped;
      return true;
    }
    ++in_flight_;
  }
  Send(intended_ns, *sequence);
  return true;
}

void RunState::SendNextIfRunning() {
  const int64_t now_ns = NowNs();
  std::optional<uint64_t> sequence;
  {
    absl::MutexLock lock(&mu_);
    if (now_ns >= end_ns_) return;
    sequence = NextSequence();
    if (!sequence.has_value()) return;
    ++in_flight_;
  }
  Send(now_ns, *sequence);
}

void RunState::Finish(int64_t intended_ns, int64_t first_message_ns, const grpc::Status& status) {
  const int64_t now_ns = NowNs();
  std::optional<uint64_t> next;  // closed loop: the request that takes over this slot
  {
    absl::MutexLock lock(&mu_);
    if (intended_ns < measure_start_ns_) {
      ++report_.warmup_requests;
    } else {
      last_measured_done_ns_ = std::max(last_measured_done_ns_, now_ns);
      if (status.ok()) {
        ++report_.ok;
        report_.latency.Record(now_ns - intended_ns);
        if (first_message_ns > 0) report_.ttft.Record(first_message_ns - intended_ns);
      } else {
        ++report_.errors;
        ++report_.errors_by_code[CodeName(status.error_code())];
      }
    }
    // Handing the slot over under the same lock keeps in_flight_ from touching 0 mid-run.
    if (options_.concurrency > 0 && now_ns < end_ns_) next = NextSequence();
    if (!next.has_value()) --in_flight_;
  }
  if (next.has_value()) Send(now_ns, *next);
}

int64_t RunState::Drain(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &RunState::Idle), timeout);
  return in_flight_;
}

LoadReport RunState::TakeReport() {
  const int64_t now_ns = NowNs();
  absl::MutexLock lock(&mu_);
  const int64_t measured_end_ns =
      last_measured_done_ns_ > 0 ? last_measured_done_ns_ : std::min(now_ns, end_ns_);
  report_.measured_s = std::max<int64_t>(0, measured_end_ns - measure_start_ns_) / 1e9;
  report_.abandoned = in_flight_;
  return std::move(report_);
}

void RunState::Send(int64_t intended_ns, uint64_t sequence) {
  GenerateRequest request = MakeGenerateRequest(options_, sequence);
  if (options_.mode == LoadMode::kUnary) {
    UnaryCall::Start(shared_from_this(), std::move(request), intended_ns);
  } else {
    StreamCall::Start(shared_from_this(), std::move(request), intended_ns);
  }
}

// Calls finish by their deadline; the margin covers a late callback.
constexpr absl::Duration kDrainMargin = absl::Seconds(5);

void RunOpenLoop(RunState& state, double rate_rps, int64_t start_ns) {
  const double interval_ns = 1e9 / rate_rps;
  for (int64_t i = 0;; ++i) {
    // From the start each time, so rounding never accumulates into drift.
    const int64_t intended_ns =
        start_ns + static_cast<int64_t>(static_cast<double>(i) * interval_ns);
    if (intended_ns >= state.end_ns()) return;
    SleepUntilNs(intended_ns);
    if (!state.SendScheduled(intended_ns)) return;
  }
}

}  // namespace

absl::StatusOr<LoadMode> ParseLoadMode(absl::string_view name) {
  if (name == "unary") return LoadMode::kUnary;
  if (name == "stream") return LoadMode::kStream;
  return absl::InvalidArgumentError(
      absl::StrCat("--mode must be unary or stream, got \"", name, "\""));
}

absl::string_view LoadModeName(LoadMode mode) {
  return mode == LoadMode::kUnary ? "unary" : "stream";
}

absl::Status ValidateLoadOptions(const LoadOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("--target is required");
  if ((options.rate_rps > 0) == (options.concurrency > 0)) {
    return absl::InvalidArgumentError("exactly one of --rate and --concurrency must be positive");
  }
  if (options.rate_rps < 0 || options.concurrency < 0) {
    return absl::InvalidArgumentError("--rate and --concurrency must not be negative");
  }
  if (options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--duration_s must be positive");
  }
  if (options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--warmup_s must not be negative");
  }
  if (options.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--deadline_ms must be positive");
  }
  if (options.max_outstanding <= 0) {
    return absl::InvalidArgumentError("--max_outstanding must be positive");
  }
  if (options.max_requests < 0) {
    return absl::InvalidArgumentError("--max_requests must not be negative");
  }
  if (options.model.empty()) return absl::InvalidArgumentError("--model must not be empty");
  if (options.prompt_bytes < 0) {
    return absl::InvalidArgumentError("--prompt_bytes must not be negative");
  }
  if (options.max_tokens < 0)
    return absl::InvalidArgumentError("--max_tokens must not be negative");
  if (options.temperature < 0) {
    return absl::InvalidArgumentError("--temperature must not be negative");
  }
  if (options.distinct_prompts < 0) {
    return absl::InvalidArgumentError("--distinct_prompts must not be negative");
  }
  return absl::OkStatus();
}

GenerateRequest MakeGenerateRequest(const LoadOptions& options, uint64_t sequence) {
  const uint64_t prompt_id = options.distinct_prompts > 0
                                 ? sequence % static_cast<uint64_t>(options.distinct_prompts)
                                 : sequence;
  const std::string tag = absl::StrCat(" #", prompt_id);
  const size_t filler_bytes = static_cast<size_t>(options.prompt_bytes) > tag.size()
                                  ? options.prompt_bytes - tag.size()
                                  : 0;
  std::string content;
  content.reserve(filler_bytes + tag.size());
  while (content.size() < filler_bytes) {
    content.append(kPromptFiller.data(),
                   std::min(kPromptFiller.size(), filler_bytes - content.size()));
  }
  content.append(tag);

  GenerateRequest request;
  request.set_model(options.model);
  auto* message = request.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content(std::move(content));
  request.mutable_params()->set_max_tokens(static_cast<uint32_t>(options.max_tokens));
  request.mutable_params()->set_temperature(static_cast<float>(options.temperature));
  return request;
}

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(FromNow(options.connect_timeout))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", options.target, " within ",
                                               absl::FormatDuration(options.connect_timeout)));
  }
  const int64_t start_ns = NowNs();
  auto state = std::make_shared<RunState>(options, channel, start_ns);
  if (options.rate_rps > 0) {
    RunOpenLoop(*state, options.rate_rps, start_ns);
    state->Drain(options.deadline + kDrainMargin);
  } else {
    for (int i = 0; i < options.concurrency; ++i) state->SendNextIfRunning();
    // Returns early once max_requests have finished.
    state->Drain(absl::Nanoseconds(state->end_ns() - NowNs()) + options.deadline + kDrainMargin);
  }
  return state->TakeReport();
}

}  // namespace tollgate::bench
