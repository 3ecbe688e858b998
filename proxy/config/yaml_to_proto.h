// A generic YAML → protobuf reader that walks the message descriptor with reflection.
//
//   v1::Config config;
//   absl::Status status = YamlToProto(text, &config);
//   // status.message(): "models[2].prices.input_usd_per_mtok: expected a number, got \"cheap\"
//   //                    (line 14, column 27)"
//
// Mapping: a YAML map fills a message (keys are proto field names, snake_case); a sequence fills a
// repeated field; a map fills a proto map field; a scalar sets a string, bytes, bool (true/false,
// any case), integer, floating-point (including .inf and .nan) or enum field (value name, any
// case); a null (`~`, `null` or nothing) leaves the field unset. Quoted scalars are read as their
// text, so `"0.15"` is accepted where a number is expected.
//
// Everything else is an INVALID_ARGUMENT error whose message starts with the field path and ends
// with the YAML position: unknown fields (listing the known ones), duplicate keys, wrong node kinds
// (a list where a map is expected), text that is not a number, negative values for unsigned fields,
// out-of-range integers, fractions for integer fields, and two members of one oneof. YAML syntax
// errors are INVALID_ARGUMENT naming the line and column. An empty document leaves the message
// empty. Nothing here knows a particular schema.
//
// Stateless functions; safe to call from any thread with distinct arguments.
#pragma once

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace tollgate {

// Paths of every field the YAML wrote with a non-null value, in the format of error messages:
// "listeners", "backends[0].sim", "backends[0].sim.time_scale". Lets callers tell a value written
// as zero from an omitted one where proto3 cannot.
using YamlWrittenPaths = absl::flat_hash_set<std::string>;

// Clears `message` and fills it from the single YAML document in `yaml`. When `written` is not
// null, the written field paths are added to it (also on error, up to the failing field).
absl::Status YamlToProto(absl::string_view yaml, google::protobuf::Message* message,
                         YamlWrittenPaths* written = nullptr);

}  // namespace tollgate
