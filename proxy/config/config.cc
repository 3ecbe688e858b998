#include "proxy/config/config.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
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

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (file == nullptr) {
    const int error = errno;
    const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  std::string text;
  std::array<char, 1 << 14> buffer;
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    text.append(buffer.data(), read);
  }
  if (std::ferror(file.get())) {  // e.g. a directory
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
  }
  return text;
}

// `name` without a trailing snapshot date: "-2024-08-06" or "-20241022".
absl::string_view Undated(absl::string_view name) {
  const auto digits = [](absl::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), absl::ascii_isdigit);
  };
  if (name.size() > 11 && name[name.size() - 11] == '-' && name[name.size() - 6] == '-' &&
      name[name.size() - 3] == '-' && digits(name.substr(name.size() - 10, 4)) &&
      digits(name.substr(name.size() - 5, 2)) && digits(name.substr(name.size() - 2))) {
    return name.substr(0, name.size() - 11);
  }
  if (name.size() > 9 && name[name.size() - 9] == '-' && digits(name.substr(name.size() - 8))) {
    return name.substr(0, name.size() - 9);
  }
  return name;
}

// Fills in the prices of models that have none from the price files.
absl::Status ApplyPriceFiles(const std::string& base_dir, v1::Config& source) {
  absl::flat_hash_map<std::string, v1::Prices> listed;
  for (int i = 0; i < source.price_files_size(); ++i) {
    const std::string& name = source.price_files(i);
    const std::string path =
        name.empty() || name[0] == '/' || base_dir.empty() ? name : base_dir + "/" + name;
    const std::string field = absl::StrCat("price_files[", i, "]");
    absl::StatusOr<std::string> text = ReadFile(path, "price file");
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", text.status().message()));
    }
    v1::PriceList list;
    if (absl::Status parsed = YamlToProto(*text, &list, nullptr); !parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, ": ", parsed.message()));
    }
    for (const v1::ListedPrice& model : list.models()) listed[model.name()] = model.prices();
  }
  if (listed.empty()) return absl::OkStatus();
  for (v1::Model& model : *source.mutable_models()) {
    if (model.has_prices()) continue;
    for (absl::string_view name :
         {absl::string_view(model.backend_model()), absl::string_view(model.name())}) {
      if (name.empty()) continue;
      auto it = listed.find(name);
      if (it == listed.end()) it = listed.find(Undated(name));
      if (it != listed.end()) {
        *model.mutable_prices() = it->second;
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Config>> ParseConfigYaml(absl::string_view yaml,
                                                              const std::string& base_dir) {
  v1::Config source;
  YamlWrittenPaths written;
  TG_RETURN_IF_ERROR(YamlToProto(yaml, &source, &written));
  TG_RETURN_IF_ERROR(ApplyPriceFiles(base_dir, source));
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
  TG_ASSIGN_OR_RETURN(std::string text, ReadFile(path, "config file"));
  const size_t slash = path.rfind('/');
  absl::StatusOr<std::shared_ptr<const Config>> config =
      ParseConfigYaml(text, slash == std::string::npos ? "." : path.substr(0, slash));
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
