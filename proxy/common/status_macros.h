// Status propagation macros. Abseil 20220623 ships none.
//
//   TG_RETURN_IF_ERROR(DoThing());
//   TG_ASSIGN_OR_RETURN(Config config, LoadConfig(path));
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TG_STATUS_CONCAT_INNER(a, b) a##b
#define TG_STATUS_CONCAT(a, b) TG_STATUS_CONCAT_INNER(a, b)

#define TG_RETURN_IF_ERROR(expr)                              \
  do {                                                        \
    if (absl::Status tg_status_ = (expr); !tg_status_.ok()) { \
      return tg_status_;                                      \
    }                                                         \
  } while (0)

// `lhs` may be a declaration ("Config config"), so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define TG_ASSIGN_OR_RETURN(lhs, rexpr) \
  TG_ASSIGN_OR_RETURN_IMPL(TG_STATUS_CONCAT(tg_statusor_, __LINE__), lhs, rexpr)

#define TG_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                             \
  if (!statusor.ok()) {                                \
    return std::move(statusor).status();               \
  }                                                    \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)
