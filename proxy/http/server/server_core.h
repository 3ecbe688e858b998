// State shared by an HttpServer and its connections; internal to tollgate_http_server.
//
// Connections (and the writers handed to handlers, which hold their connection) keep the core
// alive through a shared_ptr, so the io_context outlives every socket and timer even when a writer
// outlives the HttpServer. Thread-safe: options and handler are immutable, `stopped` is atomic and
// the connection registry is guarded by `mu`.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "proxy/http/server/http_server.h"

namespace tollgate::http::internal {

class Connection;

struct ServerCore {
  ServerCore(ServerOptions server_options, Handler request_handler)
      : options(std::move(server_options)),
        handler(std::move(request_handler)),
        io(options.threads) {}

  // Connections register while open so that Shutdown can reach them.
  void Register(Connection* connection, std::weak_ptr<Connection> weak) {
    absl::MutexLock lock(&mu);
    open.emplace(connection, std::move(weak));
  }
  void Unregister(Connection* connection) {
    absl::MutexLock lock(&mu);
    open.erase(connection);
  }

  const ServerOptions options;
  const Handler handler;
  // Set once the io threads are gone: writers then drop their calls and connections start no I/O.
  std::atomic<bool> stopped{false};

  absl::Mutex mu;
  absl::flat_hash_map<Connection*, std::weak_ptr<Connection>> open ABSL_GUARDED_BY(mu);

  // Last, so it is destroyed first, while the members above still exist.
  boost::asio::io_context io;
};

}  // namespace tollgate::http::internal
