// The ResponseWriter handed to a handler; internal to tollgate_http_server.
#pragma once

#include <cstdint>
#include <memory>

#include "proxy/http/server/connection.h"
#include "proxy/http/server/http_server.h"

namespace tollgate::http::internal {

// A writer for request `seq` of `connection`. It keeps the connection alive and forwards every
// call to the connection's strand; dropping it unanswered makes the connection answer 500.
std::shared_ptr<ResponseWriter> MakeResponseWriter(std::shared_ptr<Connection> connection,
                                                   uint64_t seq);

}  // namespace tollgate::http::internal
