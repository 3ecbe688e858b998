#include "accounting/kv/kv_tracker.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "accounting/kv/kv_model.h"

namespace tollgate {
namespace {

double Utilization(uint64_t live_bytes, uint64_t capacity_bytes) {
  if (capacity_bytes == 0) return live_bytes == 0 ? 0 : std::numeric_limits<double>::infinity();
  return static_cast<double>(live_bytes) / static_cast<double>(capacity_bytes);
}

}  // namespace

KvRequest::KvRequest(KvRequest&& other) noexcept
    : tracker_(std::exchange(other.tracker_, nullptr)),
      prompt_tokens_(other.prompt_tokens_),
      bytes_per_token_(other.bytes_per_token_),
      admitted_bytes_(other.admitted_bytes_),
      block_end_tokens_(other.block_end_tokens_),
      footprint_bytes_(other.footprint_bytes_) {}

KvRequest& KvRequest::operator=(KvRequest&& other) noexcept {
  if (this != &other) {
    if (tracker_ != nullptr) tracker_->End(*this);
    tracker_ = std::exchange(other.tracker_, nullptr);
    prompt_tokens_ = other.prompt_tokens_;
    bytes_per_token_ = other.bytes_per_token_;
    admitted_bytes_ = other.admitted_bytes_;
    block_end_tokens_ = other.block_end_tokens_;
    footprint_bytes_ = other.footprint_bytes_;
  }
  return *this;
}

KvRequest::~KvRequest() {
  if (tracker_ != nullptr) tracker_->End(*this);
}

KvTracker::KvTracker(uint64_t capacity_bytes, KvTrackerOptions options)
    : block_tokens_(std::max<uint32_t>(1, options.block_tokens)),
      series_(options.series),
      capacity_bytes_(capacity_bytes) {
  Publish();
}

KvRequest KvTracker::Begin(uint64_t prompt_tokens, uint64_t bytes_per_token,
                           uint64_t admitted_bytes) {
  KvRequest request;
  request.tracker_ = this;
  request.prompt_tokens_ = prompt_tokens;
  request.bytes_per_token_ = bytes_per_token;
  request.admitted_bytes_ = admitted_bytes;
  request.block_end_tokens_ = RoundUpToBlock(prompt_tokens, block_tokens_);
  request.footprint_bytes_ = KvFootprintBytes(prompt_tokens, bytes_per_token, block_tokens_);
  live_bytes_.fetch_add(request.footprint_bytes_);
  // The admission's hold of admitted_bytes becomes this request's max(admitted, footprint).
  if (request.footprint_bytes_ > admitted_bytes) {
    held_bytes_.fetch_add(request.footprint_bytes_ - admitted_bytes);
  }
  Publish();
  return request;
}

void KvTracker::Update(KvRequest& request, uint64_t generated_tokens) {
  if (request.tracker_ == nullptr) return;
  const uint64_t prompt = request.prompt_tokens_;
  const uint64_t tokens = generated_tokens > std::numeric_limits<uint64_t>::max() - prompt
                              ? std::numeric_limits<uint64_t>::max()
                              : prompt + generated_tokens;
  if (tokens <= request.block_end_tokens_) return;
  const uint64_t old_bytes = request.footprint_bytes_;
  request.block_end_tokens_ = RoundUpToBlock(tokens, block_tokens_);
  request.footprint_bytes_ = KvFootprintBytes(tokens, request.bytes_per_token_, block_tokens_);
  live_bytes_.fetch_add(request.footprint_bytes_ - old_bytes);
  const uint64_t old_held = std::max(old_bytes, request.admitted_bytes_);
  const uint64_t new_held = std::max(request.footprint_bytes_, request.admitted_bytes_);
  if (new_held != old_held) held_bytes_.fetch_add(new_held - old_held);
  Publish();
}

uint64_t KvTracker::End(KvRequest& request) {
  if (request.tracker_ == nullptr) return request.footprint_bytes_;
  request.tracker_ = nullptr;
  live_bytes_.fetch_sub(request.footprint_bytes_);
  held_bytes_.fetch_sub(std::max(request.footprint_bytes_, request.admitted_bytes_));
  if (series_.peak_bytes != nullptr) {
    series_.peak_bytes->Observe(static_cast<double>(request.footprint_bytes_));
  }
  Publish();
  NotifySpaceFreed();
  return request.footprint_bytes_;
}

double KvTracker::utilization() const {
  return Utilization(live_bytes_.load(), capacity_bytes_.load());
}

void KvTracker::SetCapacity(uint64_t capacity_bytes) {
  capacity_bytes_.store(capacity_bytes);
  Publish();
  NotifySpaceFreed();
}

void KvTracker::ReleaseHold(uint64_t bytes) {
  held_bytes_.fetch_sub(bytes);
  NotifySpaceFreed();
}

void KvTracker::SetListener(std::shared_ptr<KvSpaceListener> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

void KvTracker::NotifySpaceFreed() {
  std::shared_ptr<KvSpaceListener> listener;
  {
    absl::ReaderMutexLock lock(&listener_mu_);
    listener = listener_;
  }
  if (listener != nullptr) listener->OnSpaceFreed();
}

// A thread that set the gauges from figures another thread has since changed sets them again, so
// the last Set follows the last change: the gauges are exact whenever the counters stand still.
void KvTracker::Publish() {
  if (series_.bytes == nullptr) return;
  uint64_t live;
  uint64_t capacity;
  do {
    live = live_bytes_.load();
    capacity = capacity_bytes_.load();
    series_.bytes->Set(static_cast<double>(live));
    series_.capacity_bytes->Set(static_cast<double>(capacity));
    series_.utilization->Set(Utilization(live, capacity));
  } while (live_bytes_.load() != live || capacity_bytes_.load() != capacity);
}

}  // namespace tollgate
