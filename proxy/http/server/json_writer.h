// A compact JSON writer over RapidJSON taking std::string_view, shared by the server codecs.
//
//   JsonWriter json;
//   json.StartObject().Key("id").String(id).Key("created").Int(created).EndObject();
//   std::string text = json.Take();
//
// Strings are written byte for byte with JSON escaping (no UTF-8 validation). One writer builds
// one document; not thread-safe.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace tollgate::http::json {

class JsonWriter {
 public:
  JsonWriter() : writer_(buffer_) {}

  JsonWriter& StartObject() { return Did(writer_.StartObject()); }
  JsonWriter& EndObject() { return Did(writer_.EndObject()); }
  JsonWriter& StartArray() { return Did(writer_.StartArray()); }
  JsonWriter& EndArray() { return Did(writer_.EndArray()); }
  JsonWriter& Key(std::string_view key) {
    return Did(writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size())));
  }
  JsonWriter& String(std::string_view value) {
    return Did(writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size())));
  }
  JsonWriter& Int(int64_t value) { return Did(writer_.Int64(value)); }
  JsonWriter& Uint(uint64_t value) { return Did(writer_.Uint64(value)); }
  JsonWriter& Double(double value) { return Did(writer_.Double(value)); }
  JsonWriter& Bool(bool value) { return Did(writer_.Bool(value)); }
  JsonWriter& Null() { return Did(writer_.Null()); }
  // A string value, or null when empty.
  JsonWriter& StringOrNull(std::string_view value) {
    return value.empty() ? Null() : String(value);
  }

  // The document; REQUIRES every object and array to be closed.
  std::string Take() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

 private:
  JsonWriter& Did(bool) { return *this; }

  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace tollgate::http::json
