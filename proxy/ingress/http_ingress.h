// OpenAI-compatible HTTP ingress: /v1/chat/completions, /v1/completions, /v1/embeddings and
// /v1/models, served through the same pipeline as gRPC, so an application switches to Tollgate by
// changing one base URL.
//
// Responses carry x-tollgate-cost-usd, x-tollgate-cache and x-request-id headers. A stream's cost
// comes in its usage chunk (when the client asked for one with stream_options.include_usage) as
// the extra field "x_tollgate": {"cost_usd", "cost_nano_usd"}. Errors come back in OpenAI's error
// JSON shape with the matching HTTP status.
//
// A request's `Cache-Control: no-cache` skips the response cache and refreshes it; `no-store`
// keeps its answer out of the cache; both together do both.
//
// Thread-safe; the pipeline and snapshot holder must outlive it.
#pragma once

#include "proxy/http/server/http_server.h"
#include "proxy/pipeline.h"

namespace tollgate {

class HttpIngress {
 public:
  HttpIngress(Pipeline* pipeline, const SnapshotHolder* snapshots)
      : pipeline_(pipeline), snapshots_(snapshots) {}

  // The server's handler.
  void Handle(const http::Request& request, const std::shared_ptr<http::ResponseWriter>& writer);

  // Error bodies for errors the HTTP server answers itself (413, 400, ...), in OpenAI's shape.
  static std::pair<std::string, std::string> ErrorBody(int status, std::string_view message);

 private:
  void Generate(const http::Request& request, const std::shared_ptr<http::ResponseWriter>& writer,
                bool chat);
  void Embed(const http::Request& request, const std::shared_ptr<http::ResponseWriter>& writer);
  void Models(const http::Request& request, const std::shared_ptr<http::ResponseWriter>& writer);

  Pipeline* const pipeline_;
  const SnapshotHolder* const snapshots_;
};

// The GenerateRequest.cache_control of a `Cache-Control` request header: no-cache, no-store, both,
// or neither (other directives and unknown text are ignored).
v1::CacheControl CacheControlFromHeader(absl::string_view value);

}  // namespace tollgate
