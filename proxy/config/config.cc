#include "proxy/config/config.h"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/status_macros.h"
#include "proxy/config/yaml_to_proto.h"

namespace tollgate {

const ModelConfig* Config::FindModel(absl::string_view name) const {
  const auto it = model_index_.find(name);
  return it == model_index_.end() ? nullptr : &models[it->second];
}

const BackendConfig* Config::FindBackend(absl::string_view name) const {
  const auto it = backend_index_.find(name);
  return it == backend_index_.end() ? nullptr : &backends[it->second];
}

absl::StatusOr<std::shared_ptr<const Config>> ParseConfigYaml(absl::string_view yaml) {
  v1::Config source;
  YamlWrittenPaths written;
  TG_RETURN_IF_ERROR(YamlToProto(yaml, &source, &written));
  // proto3 reads an omitted time_scale as 0 (instant); the YAML tells omitted from written.
  for (int i = 0; i < source.backends_size(); ++i) {
    v1::Backend& backend = *source.mutable_backends(i);
    if (backend.has_sim() && !written.contains(absl::StrCat("backends[", i, "].sim.time_scale"))) {
      backend.mutable_sim()->set_time_scale(1.0);
    }
  }
  return BuildConfig(source);
}

absl::StatusOr<std::shared_ptr<const Config>> LoadConfigFile(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (file == nullptr) {
    const int error = errno;
    const std::string message = absl::StrCat("config file ", path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  std::string text;
  std::array<char, 1 << 14> buffer;
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    text.append(buffer.data(), read);
  }
  if (std::ferror(file.get())) {  // e.g. a directory
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": ", std::strerror(errno)));
  }
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(text);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

std::string ApiKeySha256Hex(absl::string_view api_key) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int length = 0;
  // Fails only when OpenSSL cannot allocate; the empty result then matches no configured key.
  if (EVP_Digest(api_key.data(), api_key.size(), digest.data(), &length, EVP_sha256(), nullptr) !=
      1) {
    return "";
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

}  // namespace tollgate
