// Test doubles for the HTTP backend tests: an observer that records a generation, a callback
// that records an embedding answer, a BackendConfig pointing at a fake server, and small helpers
// for payloads, JSON and SSE frames.
//
// Thread safety: the recorders are filled from the HTTP client's threads and read by the test
// thread; every wait is bounded.
#pragma once

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proxy/backends/backend.h"
#include "proxy/config/config.h"
#include "rapidjson/document.h"

namespace tollgate::testing {

inline constexpr absl::Duration kWait = absl::Seconds(20);  // never reached when green

class RecordingObserver final : public GenerateObserver {
 public:
  void OnMessage(const v1::GenerateResponse& message) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(done_.HasBeenNotified()) << "OnMessage after OnDone";
    messages_.push_back(message);
    if (!first_message_.HasBeenNotified()) first_message_.Notify();
  }
  void OnDone(const absl::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      EXPECT_FALSE(done_.HasBeenNotified()) << "OnDone twice";
      status_ = status;
    }
    done_.Notify();
  }

  // Waits (bounded) for OnDone and returns its status.
  absl::Status Wait() {
    EXPECT_TRUE(done_.WaitForNotificationWithTimeout(kWait)) << "no OnDone";
    absl::MutexLock lock(&mu_);
    return status_;
  }
  bool WaitForFirstMessage() { return first_message_.WaitForNotificationWithTimeout(kWait); }

  std::vector<v1::GenerateResponse> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  std::string text() {
    absl::MutexLock lock(&mu_);
    std::string text;
    for (const auto& m : messages_) text += m.text();
    return text;
  }
  v1::GenerateResponse last() {
    absl::MutexLock lock(&mu_);
    return messages_.empty() ? v1::GenerateResponse() : messages_.back();
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::GenerateResponse> messages_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  absl::Notification first_message_;
  absl::Notification done_;
};

class EmbedRecorder {
 public:
  EmbedCallback Callback() {
    return [this](absl::StatusOr<v1::EmbedResponse> result) {
      {
        absl::MutexLock lock(&mu_);
        result_ = std::move(result);
      }
      done_.Notify();
    };
  }
  absl::StatusOr<v1::EmbedResponse> Wait() {
    EXPECT_TRUE(done_.WaitForNotificationWithTimeout(kWait)) << "no embed answer";
    absl::MutexLock lock(&mu_);
    return result_;
  }

 private:
  absl::Mutex mu_;
  absl::StatusOr<v1::EmbedResponse> result_ ABSL_GUARDED_BY(mu_) = absl::UnknownError("none");
  absl::Notification done_;
};

inline BackendConfig HttpBackendConfig(BackendKind kind, uint16_t port) {
  BackendConfig config;
  config.name = kind == BackendKind::kOpenAi ? "openai-test" : "anthropic-test";
  config.kind = kind;
  config.timeout = absl::Seconds(30);
  config.base_url =
      BaseUrl{.tls = false, .host = "127.0.0.1", .port = port, .path_prefix = "/prefix"};
  config.api_key = "sk-test-key";
  config.max_connections = 4;
  return config;
}

// The payload `url` of `status` as a string, if present.
inline absl::optional<std::string> Payload(const absl::Status& status, absl::string_view url) {
  absl::optional<absl::Cord> payload = status.GetPayload(url);
  if (!payload.has_value()) return absl::nullopt;
  return std::string(*payload);
}

// `text` parsed; the test fails on a parse error.
inline rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document document;
  document.Parse(text.c_str(), text.size());
  EXPECT_FALSE(document.HasParseError()) << text;
  return document;
}

// One server-sent event carrying `data` (and `event` when given).
inline std::string SseFrame(const std::string& data, const std::string& event = "") {
  return (event.empty() ? "" : "event: " + event + "\n") + "data: " + data + "\n\n";
}

}  // namespace tollgate::testing
