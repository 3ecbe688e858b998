#include "accounting/ledger/summarize.h"

#include <algorithm>
#include <array>
#include <map>
#include <sstream>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"
#include "accounting/ledger/reader.h"
#include "proxy/common/status_macros.h"

namespace tollgate {
namespace {

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

struct Totals {
  uint64_t requests = 0;
  absl::int128 spend_nano_usd = 0;
  std::array<uint64_t, 5> tokens{};  // in kTokenColumns' order

  void Add(const LedgerRecord& r) {
    ++requests;
    spend_nano_usd += r.total_nano_usd;
    const std::array<uint64_t, 5> add = {r.input_tokens, r.cached_input_tokens,
                                         r.cache_write_input_tokens, r.output_tokens,
                                         r.reasoning_tokens};
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] += add[i];
  }
};

constexpr std::array<const char*, 5> kTokenColumns = {"input_tokens", "cached_input_tokens",
                                                      "cache_write_input_tokens", "output_tokens",
                                                      "reasoning_tokens"};

// nano-USD as USD with nine decimals, exactly.
std::string FormatUsd(absl::int128 nano_usd) {
  const bool negative = nano_usd < 0;
  const absl::uint128 magnitude =
      negative ? absl::uint128(-(nano_usd + 1)) + 1 : absl::uint128(nano_usd);
  const absl::uint128 billion = 1000000000;
  std::ostringstream whole;
  whole << magnitude / billion;
  std::string fraction = absl::StrCat(absl::Uint128Low64(magnitude % billion));
  fraction.insert(0, 9 - fraction.size(), '0');
  return absl::StrCat(negative ? "-" : "", whole.str(), ".", fraction);
}

// The column each SummaryGroup groups by, and its name (the --by value and the table heading).
struct GroupColumn {
  SummaryGroup group;
  const char* name;
  std::string LedgerRecord::*key;
};
constexpr GroupColumn kGroupColumns[] = {
    {SummaryGroup::kTenant, "tenant", &LedgerRecord::tenant},
    {SummaryGroup::kModel, "model", &LedgerRecord::model},
    {SummaryGroup::kBackend, "backend", &LedgerRecord::backend},
};

const GroupColumn& ColumnOf(SummaryGroup group) {
  for (const GroupColumn& column : kGroupColumns) {
    if (column.group == group) return column;
  }
  return kGroupColumns[0];
}

std::vector<std::string> Row(std::string name, const Totals& t) {
  std::vector<std::string> row = {name.empty() ? "-" : std::move(name), absl::StrCat(t.requests),
                                  FormatUsd(t.spend_nano_usd)};
  for (uint64_t tokens : t.tokens) row.push_back(absl::StrCat(tokens));
  return row;
}

// The first column left-aligned, the others right-aligned, two spaces apart.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = row[0] + std::string(widths[0] - row[0].size(), ' ');
    for (size_t i = 1; i < row.size(); ++i) {
      absl::StrAppend(&line, "  ", std::string(widths[i] - row[i].size(), ' '), row[i]);
    }
    out << line << "\n";
  }
}

absl::StatusOr<absl::Time> ParseFlagTime(std::string_view flag, std::string_view value) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, Absl(value), &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", Absl(flag), "=", Absl(value), ": not an RFC 3339 time (2026-11-21T00:00:00Z)"));
  }
  return time;
}

absl::StatusOr<SummaryGroup> ParseGroup(std::string_view value) {
  for (const GroupColumn& column : kGroupColumns) {
    if (value == column.name) return column.group;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--by=", Absl(value), ": expected tenant, model or backend"));
}

}  // namespace

int SummarizeLedger(const std::vector<std::string>& files, const SummarizeOptions& options,
                    std::ostream& out, std::ostream& err) {
  const GroupColumn& column = ColumnOf(options.group_by);
  std::map<std::string, Totals> groups;
  Totals total;
  ReadStats stats;
  const absl::Status read = ReadLedgerFiles(
      files,
      [&](const LedgerRecord& r) {
        if ((options.from && r.time < *options.from) || (options.to && r.time >= *options.to)) {
          return;
        }
        groups[r.*column.key].Add(r);
        total.Add(r);
      },
      &stats);
  if (!read.ok()) {
    err << "tollgate ledger summarize: " << read.message() << "\n";
    return 1;
  }
  if (stats.torn_lines + stats.corrupt_lines > 0) {
    err << "warning: skipped " << stats.torn_lines << " torn and " << stats.corrupt_lines
        << " corrupt lines\n";
  }
  std::vector<std::vector<std::string>> rows = {{column.name, "requests", "spend_usd"}};
  rows[0].insert(rows[0].end(), kTokenColumns.begin(), kTokenColumns.end());
  for (const auto& [name, totals] : groups) rows.push_back(Row(name, totals));
  rows.push_back(Row("total", total));
  PrintTable(rows, out);
  return 0;
}

absl::StatusOr<SummarizeCommand> ParseSummarizeArgs(const std::vector<std::string>& args) {
  SummarizeCommand command;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      command.files.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string flag = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (flag != "from" && flag != "to" && flag != "by") {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", flag));
    }
    if (eq == std::string::npos && i + 1 == args.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " needs a value"));
    }
    const std::string value = eq != std::string::npos ? arg.substr(eq + 1) : args[++i];
    if (flag == "by") {
      TG_ASSIGN_OR_RETURN(command.options.group_by, ParseGroup(value));
    } else {
      TG_ASSIGN_OR_RETURN(absl::Time time, ParseFlagTime(flag, value));
      (flag == "from" ? command.options.from : command.options.to) = time;
    }
  }
  if (command.files.empty()) return absl::InvalidArgumentError("no ledger files given");
  return command;
}

}  // namespace tollgate
