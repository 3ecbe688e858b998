// The durable usage ledger: one JSON line per request, appended from request threads and written
// by a background thread that batches lines and fsyncs them (group commit).
//
//   LedgerOptions options;
//   options.directory = "/var/lib/tollgate/ledger";
//   options.fsync_interval = absl::Milliseconds(50);
//   TG_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger, Ledger::Open(std::move(options)));
//   ledger->Append(std::move(record));  // request thread: a mutex and a move, no I/O
//   ...
//   ledger->Close();                    // SIGTERM: every appended record written and fsynced
//
// Files are `<directory>/<prefix>-<index>-<YYYYMMDDTHHMMSSZ>.jsonl`, the index counting up from 1
// (ListLedgerFiles orders them, ReadLedgerFiles reads them: see reader.h). A line is written whole
// or rolled back: a write or fsync that fails truncates the file back to its last fsynced size, and
// Open truncates a torn last line left by a crash, so the only damage a file can carry is a torn
// last line (when even truncation failed, the writer moves on to a new file), which the reader
// drops with a warning.
//
// Durability: Flush() returns OK once every record appended before it is fsynced. Without Flush,
// records are fsynced at most `fsync_interval` after they are appended, so SIGKILL (or power loss)
// loses at most the last fsync_interval of records, plus the batch being written.
//
// Write failures (disk full, EIO, permissions) never reach the request path: they are counted
// (write_errors(), on_write_error), logged, and the failed records stay buffered and are retried
// every `retry_interval` (and on each Flush) until they are written.
//
// Overflow: at most `max_buffered_records` records are held in memory, written or not. An Append
// that finds the buffer full drops the NEW record (dropped_records(), on_dropped_record), never an
// older one: the records kept are then exactly those appended before the fault filled the buffer,
// the loss is one window of time that the log names (first and last dropped request), and the
// writer never has lines it is writing taken away from it. Dropping oldest instead would move the
// hole continuously and make a retried batch lose lines midway.
//
// Thread safety: Append, Flush, Close and the counters may be called concurrently from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate {

// One request, as the ledger stores it. A plain value type.
struct LedgerRecord {
  std::string request_id;
  absl::Time time;  // when the request ended (its spend settled); RFC 3339 UTC, to the microsecond
  std::string tenant;
  std::string key_id;  // the hashed API key id, never the key
  std::string model;
  std::string backend;

  uint64_t input_tokens = 0;  // every prompt token, cached ones included
  uint64_t cached_input_tokens = 0;
  uint64_t cache_write_input_tokens = 0;
  uint64_t output_tokens = 0;  // every generated token, reasoning ones included
  uint64_t reasoning_tokens = 0;
  std::string usage_source;  // "reported", "counted" or "estimated"

  int64_t total_nano_usd = 0;  // the sum of the components below
  int64_t input_nano_usd = 0;
  int64_t cached_input_nano_usd = 0;
  int64_t cache_write_nano_usd = 0;
  int64_t output_nano_usd = 0;
  int64_t reasoning_nano_usd = 0;
  int64_t gpu_nano_usd = 0;

  std::string cache_status;  // "miss", "hit", "bypass" or "coalesced"
  // A hit or coalesced request: what the backend charged for the answer, less what this request
  // was charged. Absent from lines written before the response cache (read as 0).
  int64_t saved_nano_usd = 0;
  absl::Duration latency;    // stored in whole microseconds
  std::string status;        // lower-case gRPC code name: "ok", "cancelled", "resource_exhausted"

  bool operator==(const LedgerRecord&) const = default;
};

// The record as one line of JSON, with its trailing '\n'. Strings are JSON-escaped, so the line
// never contains another newline.
std::string ToJsonLine(const LedgerRecord& record);

// Parses a line written by ToJsonLine (a trailing '\n' is allowed). INVALID_ARGUMENT naming the
// problem (not JSON, a missing field, a field of the wrong type or range, a bad time). Unknown
// fields are ignored, so newer writers stay readable.
absl::StatusOr<LedgerRecord> ParseJsonLine(std::string_view line);

struct LedgerOptions {
  std::string directory;  // created if missing
  std::string file_prefix = "ledger";
  // Group commit: how long a record may wait to be written and fsynced. Zero: written and fsynced
  // as soon as the writer gets to it (records that arrive during one fsync share the next).
  absl::Duration fsync_interval = absl::Milliseconds(50);
  // Rotation: a new file once the current one would grow past max_file_bytes (a single record
  // larger than that gets a file of its own), or once it was started rotate_interval ago. Only a
  // non-empty file is rotated. Zero disables either.
  uint64_t max_file_bytes = 64 << 20;
  absl::Duration rotate_interval = absl::Hours(1);
  // Records held in memory, written or not, before Append drops new ones (see Overflow above).
  size_t max_buffered_records = 100000;
  // After a failed write, the next attempt comes this much later (or at the next Flush).
  absl::Duration retry_interval = absl::Seconds(1);

  // The clock that names files and drives rotate_interval (tests inject one). Default absl::Now.
  std::function<absl::Time()> now;
  // Warnings and errors. Default: tollgate::LogLine (stderr).
  std::function<void(std::string_view)> log;
  // Called on every failed write attempt and every dropped record, e.g. to increment
  // tollgate_ledger_write_errors_total. May run on any thread, without the ledger's lock held.
  std::function<void()> on_write_error;
  std::function<void()> on_dropped_record;
};

class Ledger {
 public:
  // Opens `options.directory`, takes an exclusive lock on it for `file_prefix` (a second Ledger on
  // the same directory and prefix, in any process, gets FAILED_PRECONDITION), resumes the newest
  // ledger file after truncating a torn last line, and starts the writer thread. INVALID_ARGUMENT
  // for bad options; the errno status when the directory or file cannot be opened.
  static absl::StatusOr<std::unique_ptr<Ledger>> Open(LedgerOptions options);

  // Closes (see Close).
  virtual ~Ledger() = default;

  // Queues the record and returns; never blocks on I/O. Dropped (and counted) when the buffer is
  // full or the ledger is closed.
  virtual void Append(LedgerRecord record) = 0;

  // Blocks until every record appended before the call is written and fsynced: OK. If a write
  // attempt made meanwhile fails, returns its error instead (the records stay buffered and are
  // retried), so that Flush never hangs on a broken disk.
  virtual absl::Status Flush() = 0;

  // Writes and fsyncs everything appended before it and stops the writer; later Appends are
  // dropped. One final attempt: its error is returned (and the records it could not write are
  // counted as dropped). Idempotent; the destructor calls it.
  virtual absl::Status Close() = 0;

  virtual uint64_t write_errors() const = 0;      // failed write attempts
  virtual uint64_t dropped_records() const = 0;   // records that never reached the disk
  virtual uint64_t buffered_records() const = 0;  // appended, not yet fsynced
};

}  // namespace tollgate
