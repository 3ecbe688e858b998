// Tests accounting/ledger/record_json.cc: the ledger's line format.
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "accounting/ledger/ledger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/ledger/ledger_test_util.h"

namespace tollgate::ledger_test {
namespace {

using ::testing::HasSubstr;

LedgerRecord InvoiceRecord() {
  LedgerRecord r;
  r.request_id = "r-1";
  r.time = absl::FromUnixMicros(1'795'237'200'123'456);  // 2026-11-21T05:00:00.123456Z
  r.tenant = "acme";
  r.key_id = "k-9f2c";
  r.model = "gpt-4o";
  r.backend = "openai";
  r.input_tokens = 1200;
  r.cached_input_tokens = 1024;
  r.output_tokens = 300;
  r.usage_source = "reported";
  r.total_nano_usd = 4'720'000;
  r.input_nano_usd = 440'000;
  r.cached_input_nano_usd = 1'280'000;
  r.output_nano_usd = 3'000'000;
  r.cache_status = "miss";
  r.latency = absl::Microseconds(812'345);
  r.status = "ok";
  return r;
}

constexpr char kInvoiceLine[] =
    R"({"time":"2026-11-21T05:00:00.123456Z","request_id":"r-1","tenant":"acme",)"
    R"("key_id":"k-9f2c","model":"gpt-4o","backend":"openai","usage_source":"reported",)"
    R"("cache_status":"miss","status":"ok","latency_us":812345,"tokens":{"input":1200,)"
    R"("cached_input":1024,"cache_write_input":0,"output":300,"reasoning":0},)"
    R"("cost_nano_usd":{"total":4720000,"input":440000,"cached_input":1280000,)"
    R"("cache_write":0,"output":3000000,"reasoning":0,"gpu":0},"saved_nano_usd":0})"
    "\n";

std::string ParseError(std::string_view line) {
  absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(line);
  EXPECT_FALSE(parsed.ok()) << line;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

TEST(LedgerJson, WritesTheDocumentedLine) { EXPECT_EQ(ToJsonLine(InvoiceRecord()), kInvoiceLine); }

TEST(LedgerJson, RoundTripsEveryField) {
  for (uint64_t n : {1, 2, 17, 1000}) {
    const LedgerRecord record = NumberedRecord(n);
    absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(ToJsonLine(record));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, record);
  }
  absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(kInvoiceLine);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, InvoiceRecord());
}

TEST(LedgerJson, RoundTripsExtremeCountsAndStringsThatNeedEscaping) {
  LedgerRecord record = InvoiceRecord();
  record.tenant = "a \"quoted\"\ntenant\\ with \t control \x01 and ünïcode";
  record.model = "";
  record.input_tokens = std::numeric_limits<uint64_t>::max();
  record.total_nano_usd = std::numeric_limits<int64_t>::max();
  record.gpu_nano_usd = std::numeric_limits<int64_t>::min();
  record.latency = absl::Microseconds(-5);
  const std::string line = ToJsonLine(record);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line, whatever the strings hold";
  absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, record);
}

TEST(LedgerJson, RoundTripsTheSavingOfACacheHitAndReadsOlderLinesWithoutIt) {
  LedgerRecord hit = InvoiceRecord();
  hit.cache_status = "hit";
  hit.total_nano_usd = hit.input_nano_usd = hit.cached_input_nano_usd = hit.output_nano_usd = 0;
  hit.saved_nano_usd = 4'720'000;
  absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(ToJsonLine(hit));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, hit);

  // A line written before the cache existed has no saving.
  parsed = ParseJsonLine(absl::StrReplaceAll(kInvoiceLine, {{R"(,"saved_nano_usd":0)", ""}}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, InvoiceRecord());
  EXPECT_THAT(ParseError(absl::StrReplaceAll(
                  kInvoiceLine, {{R"("saved_nano_usd":0)", R"("saved_nano_usd":"lots")"}})),
              HasSubstr(R"(field "saved_nano_usd" must be a 64-bit integer)"));
}

TEST(LedgerJson, StoresTimeAndLatencyToTheMicrosecond) {
  LedgerRecord record = InvoiceRecord();
  record.time += absl::Nanoseconds(999);
  record.latency += absl::Nanoseconds(999);
  absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(ToJsonLine(record));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, InvoiceRecord());
}

TEST(LedgerJson, AcceptsAnyRfc3339OffsetAndIgnoresUnknownFields) {
  std::string line = absl::StrReplaceAll(
      kInvoiceLine, {{"2026-11-21T05:00:00.123456Z", "2026-11-21T07:00:00.123456+02:00"},
                     {R"("status":"ok")", R"("status":"ok","added_later":[1,{"x":2}])"}});
  absl::StatusOr<LedgerRecord> parsed = ParseJsonLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, InvoiceRecord());
}

TEST(LedgerJson, RejectsMalformedLinesNamingTheProblem) {
  const std::string line(kInvoiceLine);
  EXPECT_THAT(ParseError(""), HasSubstr("not JSON"));
  EXPECT_THAT(ParseError("hello"), HasSubstr("not JSON"));
  EXPECT_THAT(ParseError(line.substr(0, 40)), HasSubstr("not JSON"));  // torn
  EXPECT_THAT(ParseError(line.substr(0, line.size() - 1) + " {}"), HasSubstr("not JSON"));
  EXPECT_THAT(ParseError("[1,2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{R"("tenant":"acme",)", ""}})),
              HasSubstr(R"(field "tenant" is missing)"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{R"("tenant":"acme")", R"("tenant":7)"}})),
              HasSubstr(R"(field "tenant" must be a string)"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{R"({"input":1200)", R"({"input":-1)"}})),
              HasSubstr(R"(field "tokens.input" must be a non-negative integer)"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{R"("output":300,)", R"("output":1.5,)"}})),
              HasSubstr(R"(field "tokens.output" must be a non-negative integer)"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{R"("gpu":0)", R"("gpu":"0")"}})),
              HasSubstr(R"(field "cost_nano_usd.gpu" must be a 64-bit integer)"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{R"("cache_write":0,)", ""}})),
              HasSubstr(R"(field "cost_nano_usd.cache_write" is missing)"));
  EXPECT_THAT(
      ParseError(absl::StrReplaceAll(line, {{R"("tokens":{)", R"("tokens":[{)"},
                                            {R"("reasoning":0},)", R"("reasoning":0}],)"}})),
      HasSubstr(R"(field "tokens" must be an object)"));
  EXPECT_THAT(ParseError(absl::StrReplaceAll(line, {{"2026-11-21T05:00:00.123456Z", "yesterday"}})),
              HasSubstr(R"(field "time" is not an RFC 3339 time: "yesterday")"));
}

}  // namespace
}  // namespace tollgate::ledger_test
