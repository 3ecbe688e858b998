// Backend kind `grpc`: a remote tollgate.v1.Inference server (tollgate-sim, or another Tollgate).
//
// Every generation is made with GenerateStream, whatever the client asked for, so that a call cut
// short still reports the tokens generated so far. One channel per backend (HTTP/2 multiplexes).
// Thread-safe.
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
