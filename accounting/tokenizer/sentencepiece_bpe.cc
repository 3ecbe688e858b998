// libsentencepiece, opened privately. The one file that includes its header (see
// sentencepiece_bpe.h for why).
//
// Debian's libsentencepiece.so.0 (0.1.97) carries its own protobuf-lite 3.14 and exports all of its
// symbols, which are also the system libprotobuf's (3.21, under gRPC). Linked into one process, the
// two copies interpose on each other: the process aborts at start-up ("compiled against version
// 3.14.0 of the Protocol Buffer runtime library, which is not compatible with the installed version
// (3.21.12)") or crashes, whichever is first in the link order. So the library is not linked but
// opened with dlopen(RTLD_LOCAL | RTLD_DEEPBIND): its symbols stay out of the process's global
// scope, and its own references bind to its own definitions first.
//
// Not linking it, this file calls the processor through its vtable, which the header declares;
// only the three non-virtual functions it needs are looked up by name. The library allocates the
// ids vector's memory with the operator new of its libstdc++, which is the process's own unless the
// process replaces operator new.
#include "accounting/tokenizer/sentencepiece_bpe.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>

#include <cassert>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

namespace tollgate::tokenizer_internal {
namespace {

using sentencepiece::SentencePieceProcessor;
using sentencepiece::util::Status;

constexpr const char* kLibrary = "libsentencepiece.so.0";

struct Library {
  void (*construct_processor)(void* at) = nullptr;                // SentencePieceProcessor()
  void (*destroy_status)(Status* status) = nullptr;               // util::Status::~Status()
  const char* (*status_message)(const Status* status) = nullptr;  // util::Status::error_message()
  std::string error;  // why the library is unusable; empty when it is usable
};

// Opened once, on first use, and never closed: loaded processors run its code.
const Library& OpenLibrary() {
  static const Library* const kLibraryFunctions = [] {
    auto* library = new Library;
    void* handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      library->error = std::string(dlerror()) + " (run scripts/setup)";
      return library;
    }
    auto find = [&](auto& function, const char* symbol) {
      function =
          reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(handle, symbol));
      if (function == nullptr) library->error = std::string(kLibrary) + " lacks " + symbol;
    };
    find(library->construct_processor, "_ZN13sentencepiece22SentencePieceProcessorC1Ev");
    find(library->destroy_status, "_ZN13sentencepiece4util6StatusD1Ev");
    find(library->status_message, "_ZNK13sentencepiece4util6Status13error_messageEv");
    return library;
  }();
  return *kLibraryFunctions;
}

// Runs `call`, which returns a util::Status, and gives its message ("" when OK). The status is
// placed in local storage and destroyed with the library's destructor, which is not linked.
template <typename Call>
std::string StatusMessage(const Library& library, Call&& call) {
  alignas(Status) unsigned char storage[sizeof(Status)];
  Status* status = new (storage) Status(call());
  std::string message;
  if (!status->ok()) {
    const char* text = library.status_message(status);
    message = text != nullptr && *text != '\0' ? text : "failed";
  }
  library.destroy_status(status);
  return message;
}

}  // namespace

std::string SentencePieceBpe::LibraryError() { return OpenLibrary().error; }

std::unique_ptr<const SentencePieceBpe> SentencePieceBpe::Load(
    const std::string& serialized_model_proto, std::string* error) {
  const Library& library = OpenLibrary();
  if (!library.error.empty()) {
    *error = library.error;
    return nullptr;
  }
  void* memory = ::operator new(sizeof(SentencePieceProcessor));
  library.construct_processor(memory);
  std::unique_ptr<SentencePieceProcessor> processor(static_cast<SentencePieceProcessor*>(memory));
  *error = StatusMessage(
      library, [&] { return processor->LoadFromSerializedProto(serialized_model_proto); });
  if (!error->empty()) return nullptr;
  return std::unique_ptr<const SentencePieceBpe>(new SentencePieceBpe(std::move(processor)));
}

SentencePieceBpe::SentencePieceBpe(std::unique_ptr<SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}

SentencePieceBpe::~SentencePieceBpe() = default;

void SentencePieceBpe::Encode(std::string_view text, std::vector<int>* ids) const {
  // Fails only for a processor that is not loaded or a null output, neither of which can happen.
  [[maybe_unused]] std::string error =
      StatusMessage(OpenLibrary(), [&] { return processor_->Encode(text, ids); });
  assert(error.empty());
}

}  // namespace tollgate::tokenizer_internal
