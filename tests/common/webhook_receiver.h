// An HTTP listener for tests that stands in for a webhook (e.g. an Alertmanager receiver): it
// accepts connections on a free loopback port, answers every request 200, and keeps the request
// bodies in arrival order.
//
//   absl::StatusOr<std::unique_ptr<WebhookReceiver>> hook = WebhookReceiver::Start();
//   ... point the sender at (*hook)->url("/alerts") ...
//   for (const std::string& body : (*hook)->Bodies()) { ... }
//
// One connection at a time, one request per connection (it answers `Connection: close`), with a
// Content-Length body: enough for Alertmanager's and most webhook senders.
//
// Thread safety: Bodies() may be called from any thread while the listener's thread records.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tollgate::testing {

class WebhookReceiver {
 public:
  // Binds 127.0.0.1:0 and starts the listener's thread.
  static absl::StatusOr<std::unique_ptr<WebhookReceiver>> Start();

  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;
  ~WebhookReceiver();  // stops the thread, closes the socket

  int port() const { return port_; }
  std::string url(const std::string& path) const;  // "http://127.0.0.1:port" + path

  // The bodies of the requests received so far.
  std::vector<std::string> Bodies() const;

 private:
  WebhookReceiver(int listen_fd, int port);
  void Serve();
  void HandleConnection(int fd);

  const int listen_fd_;
  const int port_;
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  std::vector<std::string> bodies_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace tollgate::testing
