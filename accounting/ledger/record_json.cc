// A ledger record as one line of JSON:
//
// {"time":"2026-11-21T05:00:00.123456Z","request_id":"r-1","tenant":"acme","key_id":"k-9f2c",
//  "model":"gpt-4o","backend":"openai","usage_source":"reported","cache_status":"miss",
//  "status":"ok","latency_us":812345,"tokens":{"input":1200,"cached_input":1024,
//  "cache_write_input":0,"output":300,"reasoning":0},"cost_nano_usd":{"total":4720000,
//  "input":440000,"cached_input":1280000,"cache_write":0,"output":3000000,"reasoning":0,"gpu":0},
//  "saved_nano_usd":0}
//
// (on one line). The time comes first, so that the lines of a file sort and grep by it.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <span>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "accounting/ledger/ledger.h"
#include "proxy/common/status_macros.h"

namespace tollgate {
namespace {

constexpr char kTimeFormat[] = "%Y-%m-%dT%H:%M:%E6SZ";

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// A member of LedgerRecord and its JSON key.
template <typename T>
struct Field {
  const char* key;
  T LedgerRecord::*member;
};

// In line order, after "time".
constexpr Field<std::string> kStrings[] = {
    {"request_id", &LedgerRecord::request_id},
    {"tenant", &LedgerRecord::tenant},
    {"key_id", &LedgerRecord::key_id},
    {"model", &LedgerRecord::model},
    {"backend", &LedgerRecord::backend},
    {"usage_source", &LedgerRecord::usage_source},
    {"cache_status", &LedgerRecord::cache_status},
    {"status", &LedgerRecord::status},
};
// The "tokens" object.
constexpr Field<uint64_t> kTokens[] = {
    {"input", &LedgerRecord::input_tokens},
    {"cached_input", &LedgerRecord::cached_input_tokens},
    {"cache_write_input", &LedgerRecord::cache_write_input_tokens},
    {"output", &LedgerRecord::output_tokens},
    {"reasoning", &LedgerRecord::reasoning_tokens},
};
// The "cost_nano_usd" object.
constexpr Field<int64_t> kCosts[] = {
    {"total", &LedgerRecord::total_nano_usd},
    {"input", &LedgerRecord::input_nano_usd},
    {"cached_input", &LedgerRecord::cached_input_nano_usd},
    {"cache_write", &LedgerRecord::cache_write_nano_usd},
    {"output", &LedgerRecord::output_nano_usd},
    {"reasoning", &LedgerRecord::reasoning_nano_usd},
    {"gpu", &LedgerRecord::gpu_nano_usd},
};

void WriteValue(JsonWriter& w, const std::string& value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}
void WriteValue(JsonWriter& w, uint64_t value) { w.Uint64(value); }
void WriteValue(JsonWriter& w, int64_t value) { w.Int64(value); }

template <typename T>
void WriteFields(JsonWriter& w, const LedgerRecord& r, std::span<const Field<T>> fields) {
  for (const Field<T>& field : fields) {
    w.Key(field.key);
    WriteValue(w, r.*field.member);
  }
}

absl::Status FieldError(std::string_view path, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("ledger line: field \"", absl::string_view(path.data(), path.size()), "\" ",
                   absl::string_view(problem.data(), problem.size())));
}

// Reads the fields of one JSON object; `prefix` names the object in messages ("tokens.").
class ObjectReader {
 public:
  ObjectReader(const rapidjson::Value& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  absl::StatusOr<const rapidjson::Value*> Get(const char* key) const {
    auto it = object_.FindMember(key);
    if (it == object_.MemberEnd()) return FieldError(prefix_ + key, "is missing");
    return &it->value;
  }

  absl::Status Read(const char* key, std::string* out) const {
    absl::StatusOr<const rapidjson::Value*> value = Get(key);
    if (!value.ok()) return value.status();
    if (!(*value)->IsString()) return FieldError(prefix_ + key, "must be a string");
    out->assign((*value)->GetString(), (*value)->GetStringLength());
    return absl::OkStatus();
  }

  absl::Status Read(const char* key, uint64_t* out) const {
    absl::StatusOr<const rapidjson::Value*> value = Get(key);
    if (!value.ok()) return value.status();
    if (!(*value)->IsUint64()) return FieldError(prefix_ + key, "must be a non-negative integer");
    *out = (*value)->GetUint64();
    return absl::OkStatus();
  }

  absl::Status Read(const char* key, int64_t* out) const {
    absl::StatusOr<const rapidjson::Value*> value = Get(key);
    if (!value.ok()) return value.status();
    if (!(*value)->IsInt64()) return FieldError(prefix_ + key, "must be a 64-bit integer");
    *out = (*value)->GetInt64();
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status ReadFields(std::span<const Field<T>> fields, LedgerRecord& r) const {
    for (const Field<T>& field : fields) TG_RETURN_IF_ERROR(Read(field.key, &(r.*field.member)));
    return absl::OkStatus();
  }

  absl::StatusOr<ObjectReader> Object(const char* key) const {
    absl::StatusOr<const rapidjson::Value*> value = Get(key);
    if (!value.ok()) return value.status();
    if (!(*value)->IsObject()) return FieldError(prefix_ + key, "must be an object");
    return ObjectReader(**value, prefix_ + key + ".");
  }

 private:
  const rapidjson::Value& object_;
  std::string prefix_;
};

}  // namespace

std::string ToJsonLine(const LedgerRecord& r) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("time");
  WriteValue(w, absl::FormatTime(kTimeFormat, r.time, absl::UTCTimeZone()));
  WriteFields<std::string>(w, r, kStrings);
  w.Key("latency_us");
  WriteValue(w, static_cast<int64_t>(absl::ToInt64Microseconds(r.latency)));
  w.Key("tokens");
  w.StartObject();
  WriteFields<uint64_t>(w, r, kTokens);
  w.EndObject();
  w.Key("cost_nano_usd");
  w.StartObject();
  WriteFields<int64_t>(w, r, kCosts);
  w.EndObject();
  w.Key("saved_nano_usd");
  WriteValue(w, r.saved_nano_usd);
  w.EndObject();
  std::string line(buffer.GetString(), buffer.GetSize());
  line.push_back('\n');
  return line;
}

absl::StatusOr<LedgerRecord> ParseJsonLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger line: not JSON: ", rapidjson::GetParseError_En(doc.GetParseError()),
                     " at offset ", doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return absl::InvalidArgumentError("ledger line: not a JSON object");

  LedgerRecord r;
  const ObjectReader top(doc, "");
  std::string time;
  TG_RETURN_IF_ERROR(top.Read("time", &time));
  std::string time_error;
  if (!absl::ParseTime(absl::RFC3339_full, time, &r.time, &time_error)) {
    return FieldError("time", absl::StrCat("is not an RFC 3339 time: \"", time, "\""));
  }
  TG_RETURN_IF_ERROR(top.ReadFields<std::string>(kStrings, r));
  int64_t latency_us = 0;
  TG_RETURN_IF_ERROR(top.Read("latency_us", &latency_us));
  r.latency = absl::Microseconds(latency_us);
  TG_ASSIGN_OR_RETURN(const ObjectReader tokens, top.Object("tokens"));
  TG_RETURN_IF_ERROR(tokens.ReadFields<uint64_t>(kTokens, r));
  TG_ASSIGN_OR_RETURN(const ObjectReader cost, top.Object("cost_nano_usd"));
  TG_RETURN_IF_ERROR(cost.ReadFields<int64_t>(kCosts, r));
  if (doc.HasMember("saved_nano_usd"))
    TG_RETURN_IF_ERROR(top.Read("saved_nano_usd", &r.saved_nano_usd));
  return r;
}

}  // namespace tollgate
