// Incremental parser for Server-Sent Events (text/event-stream), as the WHATWG HTML standard
// defines them: the format OpenAI and Anthropic stream their responses in.
//
//   SseParser parser;
//   std::vector<SseEvent> events;
//   absl::Status status = parser.Feed(bytes_from_the_network, &events);
//   ...
//   status = parser.Finish(&events);  // at the end of the stream
//
// Bytes may be fed in any split: mid-line, mid-CRLF, mid-UTF-8. Lines end with LF, CRLF or CR;
// a UTF-8 byte order mark at the start of the stream is skipped; comments (": keep-alive") are
// ignored; "data:x" and "data: x" are the same field. Memory is bounded: a line longer than
// `max_line_bytes`, or an event whose data grows past `max_event_bytes`, is an error, and the
// parser then refuses further input.
//
// Thread safety: none; one parser belongs to one stream, touched by one thread at a time.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tollgate::http {

struct SseEvent {
  std::string event;  // the "event:" field; empty means the default type, "message"
  std::string data;   // the "data:" lines joined with '\n'
  std::string id;     // the last "id:" seen on the stream (it persists across events)

  friend bool operator==(const SseEvent&, const SseEvent&) = default;
};

class SseParser {
 public:
  struct Limits {
    size_t max_line_bytes = 1 << 20;
    size_t max_event_bytes = 4 << 20;
  };

  SseParser() = default;
  explicit SseParser(Limits limits) : limits_(limits) {}

  // Appends the events completed by `bytes` to `events`. An error (OUT_OF_RANGE for a line or
  // event over the limits) is sticky: every later call returns it.
  absl::Status Feed(absl::string_view bytes, std::vector<SseEvent>* events);

  // The stream ended. Unlike the standard, which drops an event the stream did not terminate with
  // a blank line, a pending event is delivered: a server that closes right after "data: [DONE]\n"
  // has still said it.
  absl::Status Finish(std::vector<SseEvent>* events);

  // The reconnection time the stream asked for ("retry:"), in milliseconds; -1 when none.
  long long retry_ms() const { return retry_ms_; }

 private:
  void ProcessLine(absl::string_view line, std::vector<SseEvent>* events);
  void Dispatch(std::vector<SseEvent>* events);
  absl::Status Fail(absl::Status status);

  Limits limits_;
  absl::Status error_;
  std::string line_;           // the unterminated line so far
  bool skip_lf_ = false;       // the last byte was a CR: a following LF ends no line
  size_t bom_bytes_seen_ = 0;  // bytes of a possible leading BOM seen so far (3: past it)
  std::string event_type_;     // pending event's type
  std::string data_;           // pending event's data lines, each followed by '\n'
  std::string last_event_id_;
  long long retry_ms_ = -1;
};

}  // namespace tollgate::http
