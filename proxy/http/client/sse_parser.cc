#include "proxy/http/client/sse_parser.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace tollgate::http {
namespace {

constexpr char kBom[] = "\xEF\xBB\xBF";
constexpr size_t kBomBytes = 3;

}  // namespace

absl::Status SseParser::Fail(absl::Status status) {
  error_ = std::move(status);
  line_.clear();
  line_.shrink_to_fit();
  data_.clear();
  data_.shrink_to_fit();
  return error_;
}

absl::Status SseParser::Feed(absl::string_view bytes, std::vector<SseEvent>* events) {
  if (!error_.ok()) return error_;
  // A byte order mark may open the stream, possibly split across calls. Bytes that turn out not
  // to be one belong to the first line.
  while (bom_bytes_seen_ < kBomBytes && !bytes.empty()) {
    if (bytes.front() == kBom[bom_bytes_seen_]) {
      ++bom_bytes_seen_;
      bytes.remove_prefix(1);
      continue;
    }
    line_.assign(kBom, bom_bytes_seen_);
    bom_bytes_seen_ = kBomBytes;
  }
  while (!bytes.empty()) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (bytes.front() == '\n') {
        bytes.remove_prefix(1);
        continue;
      }
    }
    const size_t end = bytes.find_first_of("\r\n");
    const size_t length = end == absl::string_view::npos ? bytes.size() : end;
    if (line_.size() + length > limits_.max_line_bytes) {
      return Fail(absl::OutOfRangeError(
          absl::StrCat("event stream line exceeds ", limits_.max_line_bytes, " bytes")));
    }
    if (end == absl::string_view::npos) {
      line_.append(bytes.data(), bytes.size());
      break;
    }
    skip_lf_ = bytes[end] == '\r';
    if (line_.empty()) {
      ProcessLine(bytes.substr(0, end), events);
    } else {
      line_.append(bytes.data(), end);
      ProcessLine(line_, events);
      line_.clear();
    }
    if (!error_.ok()) return error_;
    bytes.remove_prefix(end + 1);
  }
  return absl::OkStatus();
}

absl::Status SseParser::Finish(std::vector<SseEvent>* events) {
  if (!error_.ok()) return error_;
  if (bom_bytes_seen_ < kBomBytes) {  // the stream was a strict prefix of a BOM
    line_.assign(kBom, bom_bytes_seen_);
    bom_bytes_seen_ = kBomBytes;
  }
  if (!line_.empty()) {
    ProcessLine(line_, events);
    line_.clear();
    if (!error_.ok()) return error_;
  }
  Dispatch(events);
  return absl::OkStatus();
}

void SseParser::ProcessLine(absl::string_view line, std::vector<SseEvent>* events) {
  if (line.empty()) {
    Dispatch(events);
    return;
  }
  if (line.front() == ':') return;  // a comment
  absl::string_view field = line;
  absl::string_view value;
  if (const size_t colon = line.find(':'); colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > limits_.max_event_bytes) {
      (void)Fail(absl::OutOfRangeError(
          absl::StrCat("event stream event exceeds ", limits_.max_event_bytes, " bytes")));
      return;
    }
    data_.append(value.data(), value.size());
    data_.push_back('\n');
  } else if (field == "event") {
    event_type_.assign(value.data(), value.size());
  } else if (field == "id") {
    if (value.find('\0') == absl::string_view::npos)
      last_event_id_.assign(value.data(), value.size());
  } else if (field == "retry") {
    long long ms = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc() && end == value.data() + value.size() && !value.empty() &&
        value.front() != '-') {
      retry_ms_ = ms;
    }
  }
  // Other fields are ignored, as the standard says.
}

void SseParser::Dispatch(std::vector<SseEvent>* events) {
  if (data_.empty()) {
    event_type_.clear();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  events->push_back(SseEvent{std::move(event_type_), std::move(data_), last_event_id_});
  event_type_.clear();
  data_.clear();
}

}  // namespace tollgate::http
