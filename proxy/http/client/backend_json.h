// Reading and writing the JSON of hosted LLM APIs (RapidJSON), shared by the client codecs of the
// HTTP backends (proxy/openai/client_codec.h, proxy/anthropic/client_codec.h).
//
// Whatever a backend sends is untrusted: a malformed document, a member of the wrong type, a
// negative token count are INTERNAL("backend sent malformed JSON: <path>: <what>"), never a crash.
// A member that is null counts as absent.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace tollgate::http {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// INTERNAL("backend sent malformed JSON: <what>").
absl::Status MalformedJson(absl::string_view what);

// The document, which must be an object.
absl::StatusOr<rapidjson::Document> ParseJsonObject(absl::string_view text);

// The member `name` of `object`, or nullptr when it is absent or null. REQUIRES: object.IsObject().
const rapidjson::Value* FindMember(const rapidjson::Value& object, const char* name);

// Typed members; `path` names `object` in errors ("choices[0]"). Absent means "", 0 or nullptr.
absl::StatusOr<std::string> StringMember(const rapidjson::Value& object, const char* name,
                                         absl::string_view path);
absl::StatusOr<uint64_t> CountMember(const rapidjson::Value& object, const char* name,
                                     absl::string_view path);
absl::StatusOr<const rapidjson::Value*> ObjectMember(const rapidjson::Value& object,
                                                     const char* name, absl::string_view path);
absl::StatusOr<const rapidjson::Value*> ArrayMember(const rapidjson::Value& object,
                                                    const char* name, absl::string_view path);

// The API's own message in an error body: error.message, or a string `error`, `message` or
// `detail`; "" when the body has none (or is not JSON).
std::string ApiErrorMessage(absl::string_view body);

// Writes `value` with the fewest digits that read back as the same float (0.7f → 0.7, not
// 0.699999988079071).
void WriteFloat(JsonWriter& writer, float value);
inline void WriteString(JsonWriter& writer, absl::string_view text) {
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

}  // namespace tollgate::http
