#include "cache/redis_reply.h"

#include <hiredis/hiredis.h>

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tollgate {
namespace {

// hiredis nests at most 7 levels; anything deeper did not come from its reader.
constexpr int kMaxDepth = 16;

absl::Status Malformed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("malformed redis reply: ", what));
}

absl::StatusOr<RedisReply> Convert(const redisReply* reply, int depth) {
  if (reply == nullptr) return Malformed("null reply");
  if (depth > kMaxDepth) return Malformed("nested too deeply");
  const auto text = [reply]() -> absl::StatusOr<std::string> {
    if (reply->str == nullptr) {
      if (reply->len != 0) return Malformed("null string with a length");
      return std::string();
    }
    return std::string(reply->str, reply->len);
  };
  switch (reply->type) {
    case REDIS_REPLY_NIL:
      return RedisReply::Nil();
    case REDIS_REPLY_INTEGER:
      return RedisReply::Integer(reply->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: {
      absl::StatusOr<std::string> s = text();
      if (!s.ok()) return s.status();
      const RedisReply::Type type = reply->type == REDIS_REPLY_STRING   ? RedisReply::Type::kString
                                    : reply->type == REDIS_REPLY_STATUS ? RedisReply::Type::kStatus
                                                                        : RedisReply::Type::kError;
      return RedisReply{type, *std::move(s), 0, {}};
    }
    case REDIS_REPLY_ARRAY: {
      if (reply->elements > 0 && reply->element == nullptr) return Malformed("null element list");
      std::vector<RedisReply> elements;
      elements.reserve(reply->elements);
      for (size_t i = 0; i < reply->elements; ++i) {
        absl::StatusOr<RedisReply> element = Convert(reply->element[i], depth + 1);
        if (!element.ok()) return element.status();
        elements.push_back(*std::move(element));
      }
      return RedisReply::Array(std::move(elements));
    }
    default:
      return Malformed(absl::StrCat("unknown type ", reply->type));
  }
}

}  // namespace

bool RedisReply::HasErrorCode(std::string_view code) const {
  return type == Type::kError && str.size() >= code.size() &&
         str.compare(0, code.size(), code) == 0 &&
         (str.size() == code.size() || str[code.size()] == ' ');
}

std::string RedisReply::DebugString() const {
  switch (type) {
    case Type::kNil:
      return "(nil)";
    case Type::kString:
      return absl::StrCat("\"", absl::CHexEscape(str), "\"");
    case Type::kInteger:
      return absl::StrCat("(integer) ", integer);
    case Type::kArray:
      return absl::StrCat("[",
                          absl::StrJoin(elements, ", ",
                                        [](std::string* out, const RedisReply& element) {
                                          out->append(element.DebugString());
                                        }),
                          "]");
    case Type::kStatus:
      return str;
    case Type::kError:
      return absl::StrCat("(error) ", str);
  }
  return "(unknown)";
}

std::string_view RedisReplyTypeName(RedisReply::Type type) {
  constexpr std::array<std::string_view, 6> kNames = {"nil",   "string", "integer",
                                                      "array", "status", "error"};
  const auto i = static_cast<size_t>(type);
  return i < kNames.size() ? kNames[i] : "unknown";
}

absl::StatusOr<RedisReply> RedisReplyFromHiredis(const redisReply* reply) {
  return Convert(reply, 0);
}

RedisReplyParser::RedisReplyParser() : reader_(redisReaderCreate()) {}

RedisReplyParser::~RedisReplyParser() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void RedisReplyParser::Feed(std::string_view bytes) {
  if (reader_ != nullptr && !bytes.empty()) redisReaderFeed(reader_, bytes.data(), bytes.size());
}

absl::StatusOr<std::optional<RedisReply>> RedisReplyParser::Next() {
  if (reader_ == nullptr) return absl::ResourceExhaustedError("redis reply reader: out of memory");
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    return absl::DataLossError(absl::StrCat("redis protocol error: ", reader_->errstr));
  }
  if (raw == nullptr) return std::nullopt;
  auto* reply = static_cast<redisReply*>(raw);
  absl::StatusOr<RedisReply> converted = RedisReplyFromHiredis(reply);
  freeReplyObject(reply);
  if (!converted.ok()) return converted.status();
  return std::optional<RedisReply>(*std::move(converted));
}

}  // namespace tollgate
