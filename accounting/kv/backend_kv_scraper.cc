#include "accounting/kv/backend_kv_scraper.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tollgate {
namespace {

// Preferred first.
constexpr absl::string_view kUsageMetrics[] = {"vllm:kv_cache_usage_perc",
                                               "vllm:gpu_cache_usage_perc"};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

void SkipBlanks(absl::string_view& s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
}

bool IsLabelNameChar(char c, bool first) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         (!first && absl::ascii_isdigit(static_cast<unsigned char>(c)));
}

// Consumes `{name="value",...}` (the brace already consumed) up to and including its `}`. Values
// may hold escaped \" \\ \n and any other character, braces and commas included.
bool ConsumeLabels(absl::string_view& s) {
  for (;;) {
    SkipBlanks(s);
    if (!s.empty() && s.front() == '}') {
      s.remove_prefix(1);
      return true;
    }
    if (s.empty() || !IsLabelNameChar(s.front(), /*first=*/true)) return false;
    while (!s.empty() && IsLabelNameChar(s.front(), /*first=*/false)) s.remove_prefix(1);
    SkipBlanks(s);
    if (s.empty() || s.front() != '=') return false;
    s.remove_prefix(1);
    SkipBlanks(s);
    if (s.empty() || s.front() != '"') return false;
    s.remove_prefix(1);
    for (;;) {
      if (s.empty()) return false;
      const char c = s.front();
      s.remove_prefix(1);
      if (c == '"') break;
      if (c == '\\') {
        if (s.empty()) return false;
        s.remove_prefix(1);
      }
    }
    SkipBlanks(s);
    if (!s.empty() && s.front() == ',') s.remove_prefix(1);
  }
}

// A sample value as Go's ParseFloat writes it ("0.5", "1e-05", "NaN", "+Inf", "-Inf").
bool ParseSampleValue(absl::string_view text, double& value) {
  if (absl::EqualsIgnoreCase(text, "nan")) {
    value = std::nan("");
    return true;
  }
  if (absl::EqualsIgnoreCase(text, "+inf") || absl::EqualsIgnoreCase(text, "inf")) {
    value = HUGE_VAL;
    return true;
  }
  if (absl::EqualsIgnoreCase(text, "-inf")) {
    value = -HUGE_VAL;
    return true;
  }
  return absl::SimpleAtod(text, &value);
}

// The value of a sample line, after its metric name: `{labels}? value timestamp?`. An error
// describes what is wrong with it.
absl::StatusOr<double> ParseSampleRest(absl::string_view rest) {
  if (!rest.empty() && rest.front() == '{') {
    rest.remove_prefix(1);
    if (!ConsumeLabels(rest)) return absl::InvalidArgumentError("malformed labels");
  }
  if (rest.empty() || !IsBlank(rest.front())) {
    return absl::InvalidArgumentError("no value after the name and labels");
  }
  SkipBlanks(rest);
  const size_t end = std::min(rest.find_first_of(" \t"), rest.size());
  double value;
  if (!ParseSampleValue(rest.substr(0, end), value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("value \"", absl::CEscape(rest.substr(0, end)), "\" is not a number"));
  }
  rest.remove_prefix(end);
  SkipBlanks(rest);
  if (!rest.empty()) {
    int64_t timestamp_ms;
    if (!absl::SimpleAtoi(rest, &timestamp_ms)) {
      return absl::InvalidArgumentError("trailing text after the value");
    }
  }
  if (std::isnan(value) || std::isinf(value)) {
    return absl::InvalidArgumentError(absl::StrCat("value ", value, " is not finite"));
  }
  if (value < 0) return absl::InvalidArgumentError(absl::StrCat("value ", value, " is negative"));
  return std::min(value, 1.0);
}

}  // namespace

absl::StatusOr<double> ParseBackendKvUsage(absl::string_view exposition) {
  std::optional<double> best[2];
  absl::Status first_problem;
  int line_number = 0;
  while (!exposition.empty()) {
    const size_t newline = exposition.find('\n');
    absl::string_view line = exposition.substr(0, newline);
    exposition.remove_prefix(newline == absl::string_view::npos ? exposition.size() : newline + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    SkipBlanks(line);
    if (line.empty() || line.front() == '#') continue;
    const size_t name_end = std::min(line.find_first_of("{ \t"), line.size());
    const absl::string_view name = line.substr(0, name_end);
    for (int i = 0; i < 2; ++i) {
      if (name != kUsageMetrics[i]) continue;
      absl::StatusOr<double> value = ParseSampleRest(line.substr(name_end));
      if (value.ok()) {
        best[i] = std::max(best[i].value_or(0), *value);
      } else if (first_problem.ok()) {
        first_problem = absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, ": ", name, ": ", value.status().message()));
      }
    }
  }
  for (const std::optional<double>& usage : best) {
    if (usage.has_value()) return *usage;
  }
  if (!first_problem.ok()) return first_problem;
  return absl::NotFoundError(absl::StrCat("no ", kUsageMetrics[0], " or ", kUsageMetrics[1],
                                          " sample in the backend's metrics"));
}

BackendKvPoller::BackendKvPoller(Fetch fetch, BackendKvPollerOptions options)
    : fetch_(std::move(fetch)), options_(std::move(options)) {}

BackendKvPoller::~BackendKvPoller() {
  Stop();
  absl::MutexLock lock(&mu_);
  if (series_ != nullptr) options_.metrics->RemoveBackendUsage(series_);
}

void BackendKvPoller::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void BackendKvPoller::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status BackendKvPoller::PollOnce() {
  absl::MutexLock poll_lock(&poll_mu_);
  absl::StatusOr<std::string> body = fetch_();
  absl::StatusOr<double> usage = body.ok() ? ParseBackendKvUsage(*body) : body.status();
  absl::Status status = usage.status();
  if (!status.ok()) {
    status = absl::Status(status.code(), absl::StrCat("backend \"", options_.backend,
                                                      "\" /metrics: ", status.message()));
  }
  absl::MutexLock lock(&mu_);
  last_status_ = status;
  if (usage.ok()) {
    usage_ = *usage;
    if (series_ == nullptr && options_.metrics != nullptr) {
      series_ = &options_.metrics->AddBackendUsage(options_.backend);
    }
    if (series_ != nullptr) series_->Set(*usage);
  } else {
    usage_.reset();
    if (series_ != nullptr) options_.metrics->RemoveBackendUsage(std::exchange(series_, nullptr));
  }
  return status;
}

std::optional<double> BackendKvPoller::usage() const {
  absl::MutexLock lock(&mu_);
  return usage_;
}

absl::Status BackendKvPoller::last_status() const {
  absl::MutexLock lock(&mu_);
  return last_status_;
}

void BackendKvPoller::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    PollOnce().IgnoreError();  // kept in last_status()
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.interval)) return;
  }
}

}  // namespace tollgate
