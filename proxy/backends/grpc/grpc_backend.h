// Backend kind `grpc`: a remote tollgate.v1.Inference server (tollgate-sim, or another Tollgate).
//
// A streamed client call is made with GenerateStream, so that a call cut short still reports the
// tokens generated so far; a unary one with Generate, which costs one message instead of one per
// token. One channel per backend (HTTP/2 multiplexes). Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "proxy/backends/backend.h"

namespace tollgate {

// `address` is host:port; `timeout` bounds a call when the client gave no earlier deadline.
std::unique_ptr<Backend> NewGrpcBackend(std::string name, const std::string& address,
                                        absl::Duration timeout);

}  // namespace tollgate
