// Typed reading of JSON request bodies (RapidJSON) with errors that name the field, shared by the
// OpenAI and Anthropic server codecs.
//
//   TG_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseJsonObject(body));
//   FieldReader request(doc, "");
//   TG_ASSIGN_OR_RETURN(std::string model, request.RequiredString("model"));
//   TG_ASSIGN_OR_RETURN(std::optional<double> temperature, request.OptionalNumber("temperature"));
//
// Errors are INVALID_ARGUMENT with a message like "messages[1].content: expected a string". A
// field that is null counts as absent. Stateless apart from the referenced value; a FieldReader
// must not outlive the document it reads.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tollgate::http::json {

// INVALID_ARGUMENT for malformed JSON (with the offset) or a root that is not an object.
absl::StatusOr<rapidjson::Document> ParseJsonObject(std::string_view text);

// "a" + "b" -> "a.b"; "" + "b" -> "b"; "a" + "[1]" -> "a[1]".
std::string FieldPath(std::string_view parent, std::string_view child);

class FieldReader {
 public:
  // REQUIRES: object.IsObject(). `path` names the object in errors ("" for the root).
  FieldReader(const rapidjson::Value& object, std::string path)
      : object_(object), path_(std::move(path)) {}

  // The member, or nullptr when absent or null.
  const rapidjson::Value* Find(std::string_view name) const;
  std::string Path(std::string_view name) const { return FieldPath(path_, name); }

  absl::StatusOr<std::string> RequiredString(std::string_view name) const;
  absl::StatusOr<std::optional<std::string>> OptionalString(std::string_view name) const;
  absl::StatusOr<std::optional<bool>> OptionalBool(std::string_view name) const;
  // Any JSON number.
  absl::StatusOr<std::optional<double>> OptionalNumber(std::string_view name) const;
  // An integer in [0, 2^32).
  absl::StatusOr<std::optional<uint32_t>> OptionalUint32(std::string_view name) const;
  absl::StatusOr<std::optional<int64_t>> OptionalInt64(std::string_view name) const;
  // A string or an array of strings; empty when absent.
  absl::StatusOr<std::vector<std::string>> StringOrStrings(std::string_view name) const;
  // REQUIRES the field to be an array; returns it.
  absl::StatusOr<const rapidjson::Value*> RequiredArray(std::string_view name) const;

 private:
  const rapidjson::Value& object_;
  std::string path_;
};

// Message content as the chat APIs send it: a string, or an array of {"type":"text","text":...}
// parts/blocks whose texts are joined with "\n". null counts as "". Other part types are
// INVALID_ARGUMENT naming the part.
absl::StatusOr<std::string> TextContent(const rapidjson::Value& content, std::string_view path);

// The string's bytes (which may include NUL). REQUIRES: value.IsString().
inline std::string_view StringOf(const rapidjson::Value& value) {
  return std::string_view(value.GetString(), value.GetStringLength());
}

}  // namespace tollgate::http::json
