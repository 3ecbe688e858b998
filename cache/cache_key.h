// Cache keys for the response cache.
//
// A key is the hex SHA-256 of a canonical serialization of everything that determines an answer:
// the tenant scope, the model as sent to the backend, the input (chat messages or prompt, and which
// of the two it is) and every generation parameter. Each field is tagged and length-prefixed, so
// no two different requests serialize alike, and the serialization does not depend on protobuf's
// wire encoding (field order, unknown fields).
//
// Not part of the key: cache_control (a directive about the cache, not the answer), tags
// (accounting labels) and request.model() (the caller passes the model it routes to).
//
// Example:
//   if (IsDeterministic(request)) {
//     std::string key = CacheKey(tenant, routed_model, request);
//     ...
//   }
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// Lower-case hex SHA-256 (64 characters); "" only if OpenSSL cannot allocate (never cached).
std::string CacheKey(std::string_view tenant_scope, std::string_view model,
                     const v1::GenerateRequest& request);

// True when the request asks for a reproducible answer: temperature present and 0, or a seed.
bool IsDeterministic(const v1::GenerateRequest& request);

}  // namespace tollgate
