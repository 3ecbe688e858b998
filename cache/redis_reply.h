// Redis replies as owned values, and the parser that makes them from the bytes a server sends.
//
// RedisReply is a plain value: a tree of strings, integers and arrays that owns its memory, so it
// can be moved to any thread and outlive the connection. A Redis error reply (WRONGTYPE, NOSCRIPT,
// a script's error) is a reply of type kError; it is not a transport failure.
//
// RedisReplyParser turns RESP bytes into replies with hiredis's reader. The bytes come from the
// network, so a protocol violation (an unknown type byte, a bad length, nesting deeper than hiredis
// supports) is an error the connection must not survive, never a crash.
//
// Example:
//   RedisReplyParser parser;
//   parser.Feed(bytes_read);
//   while (true) {
//     absl::StatusOr<std::optional<RedisReply>> next = parser.Next();
//     if (!next.ok()) { ...close the connection...; break; }
//     if (!next->has_value()) break;  // needs more bytes
//     ...use **next...
//   }
//
// Thread safety: RedisReply is a value. A RedisReplyParser is used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

struct redisReader;
struct redisReply;

namespace tollgate {

struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };

  Type type = Type::kNil;
  std::string str;                   // kString, kStatus ("OK"), kError ("NOSCRIPT No matching...")
  int64_t integer = 0;               // kInteger
  std::vector<RedisReply> elements;  // kArray

  static RedisReply Nil() { return {}; }
  static RedisReply String(std::string s) { return {Type::kString, std::move(s), 0, {}}; }
  static RedisReply Integer(int64_t i) { return {Type::kInteger, "", i, {}}; }
  static RedisReply Array(std::vector<RedisReply> e) { return {Type::kArray, "", 0, std::move(e)}; }
  static RedisReply Status(std::string s) { return {Type::kStatus, std::move(s), 0, {}}; }
  static RedisReply Error(std::string s) { return {Type::kError, std::move(s), 0, {}}; }

  bool is_error() const { return type == Type::kError; }
  // True for an error reply whose first word is `code`, e.g. HasErrorCode("NOSCRIPT").
  bool HasErrorCode(std::string_view code) const;

  // For messages and test failures: `"abc"`, `(integer) 3`, `(nil)`, `[1, "x"]`, `(error) ...`.
  std::string DebugString() const;

  friend bool operator==(const RedisReply&, const RedisReply&) = default;
};

std::string_view RedisReplyTypeName(RedisReply::Type type);

// Deep copy of a reply built by hiredis's default reply functions. INTERNAL (naming what is wrong)
// for a null reply, an unknown type, a null string with a length, or an array with a null
// element: hiredis never builds those from valid input, but the bytes came from the network.
absl::StatusOr<RedisReply> RedisReplyFromHiredis(const redisReply* reply);

class RedisReplyParser {
 public:
  RedisReplyParser();
  RedisReplyParser(const RedisReplyParser&) = delete;
  RedisReplyParser& operator=(const RedisReplyParser&) = delete;
  ~RedisReplyParser();

  // Appends bytes read from the server.
  void Feed(std::string_view bytes);

  // The next complete reply, nullopt when more bytes are needed, or DATA_LOSS for a protocol
  // error (after which every later call fails too).
  absl::StatusOr<std::optional<RedisReply>> Next();

 private:
  redisReader* reader_;
};

}  // namespace tollgate
