#include "cache/cache_key.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace tollgate {
namespace {

// Bumped whenever the serialization changes, so old and new keys never meet.
constexpr std::string_view kKeyVersion = "tollgate-cache-key-v1";

// Field tags: one byte before every field, so a present-but-empty field differs from an absent
// one and fields cannot slide into each other.
enum class Tag : char {
  kVersion = 'V',
  kTenant = 'T',
  kModel = 'M',
  kChat = 'C',
  kPrompt = 'P',
  kNoInput = 'N',
  kMessage = 'm',
  kRole = 'r',
  kName = 'n',
  kContent = 'c',
  kMaxTokens = 'x',
  kTemperature = 't',
  kTopP = 'p',
  kSeed = 's',
  kStop = 'S',
  kBatch = 'b',
  kAbsent = '-',
};

class CanonicalWriter {
 public:
  void Fixed64(Tag tag, uint64_t value) {
    out_.push_back(static_cast<char>(tag));
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
  void Bytes(Tag tag, std::string_view bytes) {
    Fixed64(tag, bytes.size());
    out_.append(bytes.data(), bytes.size());
  }
  void Float(Tag tag, float value) {
    if (value == 0.0f) value = 0.0f;  // -0 and +0 sample alike
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    Fixed64(tag, bits);
  }
  void Absent(Tag tag) {
    out_.push_back(static_cast<char>(Tag::kAbsent));
    out_.push_back(static_cast<char>(tag));
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

std::string Sha256Hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int length = 0;
  // Fails only when OpenSSL cannot allocate; the empty key is never stored (ResponseCache::Insert).
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    return "";
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

}  // namespace

std::string CacheKey(std::string_view tenant_scope, std::string_view model,
                     const v1::GenerateRequest& request) {
  CanonicalWriter w;
  w.Bytes(Tag::kVersion, kKeyVersion);
  w.Bytes(Tag::kTenant, tenant_scope);
  w.Bytes(Tag::kModel, model);
  switch (request.input_case()) {
    case v1::GenerateRequest::kChat: {
      const auto& messages = request.chat().messages();
      w.Fixed64(Tag::kChat, static_cast<uint64_t>(messages.size()));
      for (const v1::Message& message : messages) {
        w.Fixed64(Tag::kMessage, 3);
        w.Bytes(Tag::kRole, message.role());
        w.Bytes(Tag::kName, message.name());
        w.Bytes(Tag::kContent, message.content());
      }
      break;
    }
    case v1::GenerateRequest::kPrompt:
      w.Bytes(Tag::kPrompt, request.prompt());
      break;
    case v1::GenerateRequest::INPUT_NOT_SET:
      w.Absent(Tag::kNoInput);
      break;
  }
  const v1::SamplingParams& params = request.params();
  w.Fixed64(Tag::kMaxTokens, params.max_tokens());
  if (params.has_temperature()) {
    w.Float(Tag::kTemperature, params.temperature());
  } else {
    w.Absent(Tag::kTemperature);
  }
  if (params.has_top_p()) {
    w.Float(Tag::kTopP, params.top_p());
  } else {
    w.Absent(Tag::kTopP);
  }
  if (params.has_seed()) {
    w.Fixed64(Tag::kSeed, static_cast<uint64_t>(params.seed()));
  } else {
    w.Absent(Tag::kSeed);
  }
  w.Fixed64(Tag::kStop, static_cast<uint64_t>(params.stop_size()));
  for (const std::string& stop : params.stop()) w.Bytes(Tag::kStop, stop);
  w.Fixed64(Tag::kBatch, request.batch() ? 1 : 0);
  return Sha256Hex(w.bytes());
}

bool IsDeterministic(const v1::GenerateRequest& request) {
  const v1::SamplingParams& params = request.params();
  return (params.has_temperature() && params.temperature() == 0.0f) || params.has_seed();
}

}  // namespace tollgate
