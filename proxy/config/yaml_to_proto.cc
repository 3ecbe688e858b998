#include "proxy/config/yaml_to_proto.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "proxy/common/status_macros.h"

namespace tollgate {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

std::string Quote(absl::string_view text) { return absl::StrCat("\"", absl::CEscape(text), "\""); }

std::string NodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    default:
      return "null";
  }
}

// "a, b, c": the names of the descriptors `at(0)` to `at(count - 1)`.
template <typename At>
std::string JoinNames(int count, At at) {
  std::vector<std::string> names;
  names.reserve(count);
  for (int i = 0; i < count; ++i) names.push_back(at(i)->name());
  return absl::StrJoin(names, ", ");
}

std::string EnumNames(const EnumDescriptor* type) {
  return JoinNames(type->value_count(), [type](int i) { return type->value(i); });
}

// What a field's YAML value should look like, for "expected ..., got ..." messages.
std::string Expected(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      return "an integer";
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "an unsigned integer";
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "a number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return absl::StrCat("one of ", EnumNames(field->enum_type()));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "a map";
    case FieldDescriptor::CPPTYPE_STRING:
      break;
  }
  return "a string";
}

absl::Status ErrorAt(absl::string_view path, const YAML::Node& node, absl::string_view what) {
  const YAML::Mark mark = node.Mark();
  const std::string where =
      mark.is_null() ? ""
                     : absl::StrCat(" (line ", mark.line + 1, ", column ", mark.column + 1, ")");
  return absl::InvalidArgumentError(
      absl::StrCat(path.empty() ? "top level" : path, ": ", what, where));
}

absl::Status Mismatch(absl::string_view path, const YAML::Node& node, absl::string_view expected) {
  return ErrorAt(path, node, absl::StrCat("expected ", expected, ", got ", NodeKind(node)));
}

bool IsIntegerText(absl::string_view text) {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) text.remove_prefix(1);
  return !text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit);
}

absl::StatusOr<int64_t> ParseSigned(absl::string_view text, int64_t min, int64_t max,
                                    absl::string_view type) {
  if (!IsIntegerText(text)) {
    return absl::InvalidArgumentError(absl::StrCat("expected an integer, got ", Quote(text)));
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(text, " is out of range for ", type));
  }
  return value;
}

absl::StatusOr<uint64_t> ParseUnsigned(absl::string_view text, uint64_t max,
                                       absl::string_view type) {
  if (!IsIntegerText(text) || absl::StartsWith(text, "-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an unsigned integer, got ", Quote(text)));
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(text, " is out of range for ", type));
  }
  return value;
}

absl::StatusOr<double> ParseDouble(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == ".inf" || lower == "+.inf") return std::numeric_limits<double>::infinity();
  if (lower == "-.inf") return -std::numeric_limits<double>::infinity();
  if (lower == ".nan") return std::numeric_limits<double>::quiet_NaN();
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("expected a number, got ", Quote(text)));
  }
  return value;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  if (absl::EqualsIgnoreCase(text, "true")) return true;
  if (absl::EqualsIgnoreCase(text, "false")) return false;
  return absl::InvalidArgumentError(absl::StrCat("expected true or false, got ", Quote(text)));
}

absl::StatusOr<const EnumValueDescriptor*> ParseEnum(absl::string_view text,
                                                     const EnumDescriptor* type) {
  for (int i = 0; i < type->value_count(); ++i) {
    if (absl::EqualsIgnoreCase(type->value(i)->name(), text)) return type->value(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("expected one of ", EnumNames(type), ", got ", Quote(text)));
}

// Stores scalars into one field of one message: sets a singular field, appends to a repeated one.
class FieldSink {
 public:
  FieldSink(Message* message, const FieldDescriptor* field)
      : message_(message), field_(field), reflection_(message->GetReflection()) {}

  const FieldDescriptor* field() const { return field_; }

  // Sets a singular field or appends to a repeated one, through the matching Reflection method,
  // unless parsing failed.
  template <typename T, typename Parsed>
  absl::Status Store(void (Reflection::*set)(Message*, const FieldDescriptor*, T) const,
                     void (Reflection::*add)(Message*, const FieldDescriptor*, T) const,
                     absl::StatusOr<Parsed> parsed) const {
    if (!parsed.ok()) return parsed.status();
    (reflection_->*(Repeated() ? add : set))(message_, field_, static_cast<T>(*std::move(parsed)));
    return absl::OkStatus();
  }

  Message* SubMessage() const {
    return Repeated() ? reflection_->AddMessage(message_, field_)
                      : reflection_->MutableMessage(message_, field_);
  }

 private:
  bool Repeated() const { return field_->is_repeated(); }

  Message* message_;
  const FieldDescriptor* field_;
  const Reflection* reflection_;
};

// Parses `text` for the sink's field and stores it. Errors carry no path.
absl::Status StoreScalar(const std::string& text, const FieldSink& sink) {
  using Limits32 = std::numeric_limits<int32_t>;
  using Limits64 = std::numeric_limits<int64_t>;
  using R = Reflection;
  switch (sink.field()->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return sink.Store(&R::SetInt32, &R::AddInt32,
                        ParseSigned(text, Limits32::min(), Limits32::max(), "int32"));
    case FieldDescriptor::CPPTYPE_INT64:
      return sink.Store(&R::SetInt64, &R::AddInt64,
                        ParseSigned(text, Limits64::min(), Limits64::max(), "int64"));
    case FieldDescriptor::CPPTYPE_UINT32:
      return sink.Store(&R::SetUInt32, &R::AddUInt32,
                        ParseUnsigned(text, std::numeric_limits<uint32_t>::max(), "uint32"));
    case FieldDescriptor::CPPTYPE_UINT64:
      return sink.Store(&R::SetUInt64, &R::AddUInt64,
                        ParseUnsigned(text, std::numeric_limits<uint64_t>::max(), "uint64"));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return sink.Store(&R::SetDouble, &R::AddDouble, ParseDouble(text));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return sink.Store(&R::SetFloat, &R::AddFloat, ParseDouble(text));
    case FieldDescriptor::CPPTYPE_BOOL:
      return sink.Store(&R::SetBool, &R::AddBool, ParseBool(text));
    case FieldDescriptor::CPPTYPE_ENUM:
      return sink.Store(&R::SetEnum, &R::AddEnum, ParseEnum(text, sink.field()->enum_type()));
    case FieldDescriptor::CPPTYPE_STRING:
      return sink.Store(&R::SetString, &R::AddString, absl::StatusOr<std::string>(text));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InternalError("a message field is not a scalar");
}

// One conversion: walks the YAML tree alongside the descriptor, building field paths as it goes.
class Reader {
 public:
  explicit Reader(YamlWrittenPaths* written) : written_(written) {}

  absl::Status ReadMessage(const YAML::Node& node, const std::string& path, Message* message) {
    if (!node.IsMap()) return Mismatch(path, node, "a map");
    const Descriptor* descriptor = message->GetDescriptor();
    absl::flat_hash_set<std::string> seen;
    for (const auto& pair : node) {
      const YAML::Node& key = pair.first;
      if (!key.IsScalar()) return Mismatch(path, key, "a field name");
      const std::string& name = key.Scalar();
      const std::string field_path = path.empty() ? name : absl::StrCat(path, ".", name);
      if (!seen.insert(name).second) return ErrorAt(field_path, key, "duplicate key");
      const FieldDescriptor* field = descriptor->FindFieldByName(name);
      if (field == nullptr) {
        return ErrorAt(field_path, key,
                       absl::StrCat("unknown field (known fields: ", FieldNames(descriptor), ")"));
      }
      if (pair.second.IsNull()) continue;
      if (const OneofDescriptor* oneof = field->real_containing_oneof();
          oneof != nullptr && message->GetReflection()->HasOneof(*message, oneof)) {
        return ErrorAt(field_path, key,
                       absl::StrCat("only one of ", OneofNames(oneof), " may be set"));
      }
      if (written_ != nullptr) written_->insert(field_path);
      TG_RETURN_IF_ERROR(ReadField(pair.second, field_path, FieldSink(message, field)));
    }
    return absl::OkStatus();
  }

 private:
  static std::string FieldNames(const Descriptor* descriptor) {
    return JoinNames(descriptor->field_count(),
                     [descriptor](int i) { return descriptor->field(i); });
  }

  static std::string OneofNames(const OneofDescriptor* oneof) {
    return JoinNames(oneof->field_count(), [oneof](int i) { return oneof->field(i); });
  }

  absl::Status ReadField(const YAML::Node& node, const std::string& path, const FieldSink& sink) {
    const FieldDescriptor* field = sink.field();
    if (field->is_map()) return ReadMapField(node, path, sink);
    if (!field->is_repeated()) return ReadValue(node, path, sink);
    if (!node.IsSequence()) return Mismatch(path, node, "a list");
    for (size_t i = 0; i < node.size(); ++i) {
      TG_RETURN_IF_ERROR(ReadValue(node[i], absl::StrCat(path, "[", i, "]"), sink));
    }
    return absl::OkStatus();
  }

  // A proto map field: each YAML key/value pair becomes one entry message.
  absl::Status ReadMapField(const YAML::Node& node, const std::string& path,
                            const FieldSink& sink) {
    if (!node.IsMap()) return Mismatch(path, node, "a map");
    const Descriptor* entry_type = sink.field()->message_type();
    absl::flat_hash_set<std::string> seen;
    for (const auto& pair : node) {
      const YAML::Node& key = pair.first;
      if (!key.IsScalar()) return Mismatch(path, key, "a map key");
      const std::string entry_path = absl::StrCat(path, "[", Quote(key.Scalar()), "]");
      if (!seen.insert(key.Scalar()).second) return ErrorAt(entry_path, key, "duplicate key");
      Message* entry = sink.SubMessage();
      TG_RETURN_IF_ERROR(ReadValue(key, entry_path, FieldSink(entry, entry_type->map_key())));
      TG_RETURN_IF_ERROR(
          ReadValue(pair.second, entry_path, FieldSink(entry, entry_type->map_value())));
    }
    return absl::OkStatus();
  }

  // One value of a singular field, one element of a list, or one side of a map entry.
  absl::Status ReadValue(const YAML::Node& node, const std::string& path, const FieldSink& sink) {
    const FieldDescriptor* field = sink.field();
    if (node.IsNull()) return Mismatch(path, node, Expected(field));
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return ReadMessage(node, path, sink.SubMessage());
    }
    if (!node.IsScalar()) return Mismatch(path, node, Expected(field));
    if (absl::Status status = StoreScalar(node.Scalar(), sink); !status.ok()) {
      return ErrorAt(path, node, status.message());
    }
    return absl::OkStatus();
  }

  YamlWrittenPaths* written_;
};

}  // namespace

absl::Status YamlToProto(absl::string_view yaml, google::protobuf::Message* message,
                         YamlWrittenPaths* written) {
  message->Clear();
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("YAML syntax error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
  if (documents.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected one YAML document, got ", documents.size()));
  }
  if (documents.empty() || documents.front().IsNull()) return absl::OkStatus();
  try {
    return Reader(written).ReadMessage(documents.front(), "", message);
  } catch (const YAML::Exception& e) {  // yaml-cpp throws; nothing above should trigger it
    return absl::InvalidArgumentError(absl::StrCat("YAML error: ", e.what()));
  }
}

}  // namespace tollgate
