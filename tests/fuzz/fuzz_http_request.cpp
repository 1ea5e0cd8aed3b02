// `osprey serve`'s request parser (tools/http_parse.h) on arbitrary bytes: the input is read as
// pipelined requests, one after the other, each request's query and multipart body parsed too.
// The parser throws nothing: every outcome is a request, "need more bytes" or an Error with a
// 4xx/5xx status; invariants that would let the event loop misframe a stream abort.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/http_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace osprey::tools::http;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const ParseLimits limits{512, 16, 4096};  // small, so that the fuzzer reaches every limit
  for (int i = 0; i < 64 && !rest.empty(); ++i) {
    Request req;
    Error err;
    size_t consumed = 0;
    Parse p = parse_request(rest, limits, req, err, consumed);
    if (p == Parse::kError && (err.status < 400 || err.status > 599 || err.message.empty()))
      std::abort();
    if (p != Parse::kComplete) break;
    if (consumed == 0 || consumed > rest.size() || req.body.size() != req.content_length ||
        req.content_length > limits.max_body_bytes)
      std::abort();
    std::vector<std::pair<std::string, std::string>> query;
    parse_query(req.query, query, err);
    if (const std::string* type = req.header("content-type"); type && is_multipart(*type)) {
      std::vector<FormPart> parts;
      if (parse_multipart(req.body, *type, parts, err))
        for (const FormPart& part : parts)
          if (part.data.data() < req.body.data() ||
              part.data.data() + part.data.size() > req.body.data() + req.body.size())
            std::abort();
    }
    rest.remove_prefix(consumed);
  }
  return 0;
}
