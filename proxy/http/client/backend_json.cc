#include "proxy/http/client/backend_json.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"

namespace tollgate::http {
namespace {

std::string Path(absl::string_view parent, const char* name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, ".", name);
}

}  // namespace

absl::Status MalformedJson(absl::string_view what) {
  return absl::InternalError(absl::StrCat("backend sent malformed JSON: ", what));
}

absl::StatusOr<rapidjson::Document> ParseJsonObject(absl::string_view text) {
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  if (document.HasParseError()) {
    return MalformedJson(absl::StrCat(rapidjson::GetParseError_En(document.GetParseError()),
                                      " at offset ", document.GetErrorOffset()));
  }
  if (!document.IsObject()) return MalformedJson("expected an object");
  return document;
}

const rapidjson::Value* FindMember(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

absl::StatusOr<std::string> StringMember(const rapidjson::Value& object, const char* name,
                                         absl::string_view path) {
  const rapidjson::Value* value = FindMember(object, name);
  if (value == nullptr) return std::string();
  if (!value->IsString()) return MalformedJson(absl::StrCat(Path(path, name), ": not a string"));
  return std::string(value->GetString(), value->GetStringLength());
}

absl::StatusOr<uint64_t> CountMember(const rapidjson::Value& object, const char* name,
                                     absl::string_view path) {
  const rapidjson::Value* value = FindMember(object, name);
  if (value == nullptr) return 0;
  if (value->IsUint64()) return value->GetUint64();
  // Some servers write counts as 12.0.
  if (value->IsDouble()) {
    const double d = value->GetDouble();
    if (d >= 0 && d < 1e18 && std::floor(d) == d) return static_cast<uint64_t>(d);
  }
  return MalformedJson(absl::StrCat(Path(path, name), ": not a token count"));
}

absl::StatusOr<const rapidjson::Value*> ObjectMember(const rapidjson::Value& object,
                                                     const char* name, absl::string_view path) {
  const rapidjson::Value* value = FindMember(object, name);
  if (value != nullptr && !value->IsObject()) {
    return MalformedJson(absl::StrCat(Path(path, name), ": not an object"));
  }
  return value;
}

absl::StatusOr<const rapidjson::Value*> ArrayMember(const rapidjson::Value& object,
                                                    const char* name, absl::string_view path) {
  const rapidjson::Value* value = FindMember(object, name);
  if (value != nullptr && !value->IsArray()) {
    return MalformedJson(absl::StrCat(Path(path, name), ": not an array"));
  }
  return value;
}

std::string ApiErrorMessage(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> document = ParseJsonObject(body);
  if (!document.ok()) return "";
  const rapidjson::Value* error = FindMember(*document, "error");
  const rapidjson::Value* candidates[] = {
      error != nullptr && error->IsObject() ? FindMember(*error, "message") : nullptr, error,
      FindMember(*document, "message"), FindMember(*document, "detail")};
  for (const rapidjson::Value* candidate : candidates) {
    if (candidate != nullptr && candidate->IsString()) {
      return std::string(candidate->GetString(), candidate->GetStringLength());
    }
  }
  return "";
}

void WriteFloat(JsonWriter& writer, float value) {
  if (!std::isfinite(value)) {
    writer.Null();  // JSON has no NaN or infinity
    return;
  }
  char digits[32];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  writer.RawValue(digits, end - digits, rapidjson::kNumberType);
}

}  // namespace tollgate::http
