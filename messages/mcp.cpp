#include "messages/mcp.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>

#include "messages/catalog.hpp"
#include "messages/sink.hpp"
#include "messages/text.hpp"
#include "messages/trace.hpp"

namespace bulwark {

// -- error table ------------------------------------------------------------------

namespace {

constexpr error_info errors[] = {
  {error_code::parse_error, "parse_error", 400, "The body is not valid JSON."},
  {error_code::invalid_request, "invalid_request", 400,
   "Valid JSON but not a JSON-RPC 2.0 request (batches included); the message says why."},
  {error_code::method_not_found, "method_not_found", 404, "No such method in the request's protocol era."},
  {error_code::invalid_params, "invalid_params", 400,
   "A parameter is missing or malformed; the message names it. Also: unknown tool, prompt "
   "or resource, bad cursor, tampered requestState."},
  {error_code::internal_error, "internal_error", 500, "An unexpected failure inside Bulwark."},
  {error_code::header_mismatch, "header_mismatch", 400,
   "2026-07-28: MCP-Protocol-Version, Mcp-Method, Mcp-Name or Mcp-Param-* missing or not "
   "matching the body."},
  {error_code::missing_client_capability, "missing_client_capability", 400,
   "2026-07-28: the request needs a client capability that `_meta` does not declare; "
   "`data.requiredCapabilities` names it."},
  {error_code::unsupported_protocol_version, "unsupported_protocol_version", 400,
   "The protocol version is not served; `data.supported` lists those that are."},
  {error_code::server_error, "server_error", 500, "A server-side failure without more detail."},
  {error_code::deadline_exceeded, "deadline_exceeded", 504, "The request's deadline passed before it was answered."},
  {error_code::actor_restarted, "actor_restarted", 503,
   "The actor serving the request stopped (crash, kill or restart) before answering; the "
   "request may be retried."},
  {error_code::overloaded, "overloaded", 429,
   "Admission refused (queue full or rate limited); `data.retry_after_seconds` says when to "
   "retry."},
  {error_code::service_unavailable, "service_unavailable", 503,
   "A downstream service is unavailable; `data.retry_after_seconds` when known."},
  {error_code::request_cancelled, "request_cancelled", 200, "The client cancelled the request."},
  {error_code::shutting_down, "shutting_down", 503, "The server is stopping and takes no new work."},
  {error_code::session_limit, "session_limit", 429, "Too many sessions or concurrent requests."},
  {error_code::denied_by_policy, "DENIED_BY_POLICY", 403, "A gateway policy rule denies this call; the rule is named."},
  {error_code::rate_limited, "RATE_LIMITED", 429,
   "A rate limit refused the call; data.limit names it (user_quota, service, global) and data.retry_after_seconds says "
   "when to retry."},
  {error_code::unauthorized, "unauthorized", 401,
   "The request needs `Authorization: Bearer <key>` with a live API key; the WWW-Authenticate "
   "header says whether the key given was not valid (`error=\"invalid_token\"`)."},
  {error_code::insufficient_scope, "insufficient_scope", 403,
   "The caller's OAuth token lacks a scope the tool, prompt or resource needs (auth.oauth.requiredScopes); HTTP "
   "403 with `WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=..., resource_metadata=...`, and "
   "`data.requiredScopes`, `data.missingScopes`."},
};

} // namespace

const error_info* error_table(std::size_t& count) noexcept {
  count = std::size(errors);
  return errors;
}

const error_info& describe(error_code code) noexcept {
  for (auto& e : errors)
    if (e.code == code)
      return e;
  return errors[4]; // internal_error
}

int whole_answer_status(error_code code, bool stateless) noexcept {
  switch (code) {
    // Refusals a proxy or client acts on: slow down, or ask elsewhere.
    case error_code::rate_limited:
    case error_code::overloaded:
    case error_code::session_limit:
    case error_code::service_unavailable:
    case error_code::shutting_down:
    case error_code::actor_restarted:
      return describe(code).http_status;
    // 2026-07-28 answers protocol-level refusals with a status too.
    case error_code::invalid_params:
    case error_code::missing_client_capability:
    case error_code::header_mismatch:
    case error_code::unsupported_protocol_version:
      return stateless ? 400 : 200;
    case error_code::method_not_found:
      return stateless ? 404 : 200;
    default:
      return 200;
  }
}

bool caused_by_caller(int32_t code) noexcept {
  switch (static_cast<error_code>(code)) {
    case error_code::parse_error:
    case error_code::invalid_request:
    case error_code::method_not_found:
    case error_code::invalid_params:
    case error_code::header_mismatch:
    case error_code::missing_client_capability:
    case error_code::unsupported_protocol_version:
    case error_code::request_cancelled:
    case error_code::session_limit:
    case error_code::denied_by_policy:
    case error_code::rate_limited:
    case error_code::unauthorized:
    case error_code::insufficient_scope:
      return true;
    default:
      return false;
  }
}

namespace mcp {

int retry_after_header(const json::value& data) noexcept {
  const auto& v = data["retry_after_seconds"];
  if (!v.is_number())
    return 0;
  auto s = v.as_double();
  if (!(s > 0))
    return 0;
  // Whole seconds, rounded up: a client that waits that long is admitted.
  return s >= 86400 ? 86400 : static_cast<int>(std::ceil(s));
}

} // namespace mcp

std::string reply_sink::abandoned_body() const {
  return mcp::error_body(id_, error_code::actor_restarted,
                         "the actor serving this request stopped before answering; retry");
}

// -- log levels ------------------------------------------------------------------------

namespace {
constexpr std::string_view level_names[] = {"debug", "info",     "notice", "warning",
                                            "error", "critical", "alert",  "emergency"};
} // namespace

std::string_view to_string(log_level lvl) noexcept {
  return level_names[static_cast<int>(lvl)];
}

std::optional<log_level> parse_log_level(std::string_view s) noexcept {
  for (int i = 0; i < 8; ++i)
    if (level_names[i] == s)
      return static_cast<log_level>(i);
  return std::nullopt;
}

namespace mcp {

// -- versions -----------------------------------------------------------------------------

const std::vector<std::string>& stateful_versions() {
  static const std::vector<std::string> v{"2025-11-25", "2025-06-18", "2025-03-26"};
  return v;
}

const std::vector<std::string>& supported_versions() {
  static const std::vector<std::string> v{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"};
  return v;
}

bool is_stateful_version(std::string_view v) noexcept {
  for (auto& s : stateful_versions())
    if (s == v)
      return true;
  return false;
}

bool is_stateless_version(std::string_view v) noexcept {
  return v == stateless_version;
}

// -- JSON-RPC framing ------------------------------------------------------------------------

classified classify(const json::value& msg) {
  classified out;
  if (msg.is_array()) {
    out.reason = "batch requests are not supported: send one JSON-RPC message per request";
    return out;
  }
  if (!msg.is_object()) {
    out.reason = "a JSON-RPC message must be a JSON object";
    return out;
  }
  auto* version = msg.find("jsonrpc");
  if (!version || !version->is_string() || version->as_string() != "2.0") {
    out.reason = "\"jsonrpc\" must be the string \"2.0\"";
    return out;
  }
  auto* id = msg.find("id");
  // JSON-RPC 2.0: an error response whose request's id could not be read
  // (a parse error, an invalid request) has a null id.
  bool null_id_error = id && id->is_null() && !msg.find("method") && msg.find("error") && !msg.find("result");
  if (id && !null_id_error && !(id->is_string() || id->is_integer() || (id->is_number() && !id->is_integer()))) {
    out.reason = "\"id\" must be a string or a number";
    return out;
  }
  auto* method = msg.find("method");
  if (method) {
    if (!method->is_string() || method->as_string().empty()) {
      out.reason = "\"method\" must be a non-empty string";
      return out;
    }
    if (auto* params = msg.find("params"); params && !params->is_object()) {
      out.reason = "\"params\" must be an object";
      return out;
    }
    out.kind = id ? message_kind::request : message_kind::notification;
    return out;
  }
  auto* result = msg.find("result");
  auto* error = msg.find("error");
  if (result || error) {
    if (!id) {
      out.reason = "a response needs an \"id\"";
      return out;
    }
    if (result && error) {
      out.reason = "a response has either \"result\" or \"error\", not both";
      return out;
    }
    out.kind = message_kind::response;
    return out;
  }
  out.reason = "a JSON-RPC message needs a \"method\" (request) or a \"result\"/\"error\" "
               "(response)";
  return out;
}

namespace {

void write_id(std::string& out, const json::value& id) {
  if (id.is_string() || id.is_number())
    json::write(out, id);
  else
    out.append("null");
}

} // namespace

std::string result_body(const json::value& id, const json::value& result) {
  std::string out;
  out.reserve(256); // most results fit: one allocation
  out.append(R"({"jsonrpc":"2.0","id":)");
  write_id(out, id);
  out.append(R"(,"result":)");
  json::write(out, result);
  out.push_back('}');
  return out;
}

namespace {

std::atomic<error_observer> observer{nullptr};
std::atomic<error_mode> mode{error_mode::production};

} // namespace

namespace {
thread_local const error_context* current_context = nullptr;
} // namespace

std::string new_trace_id() {
  if (current_context && !current_context->trace_id.empty())
    return std::string(current_context->trace_id);
  // An error outside any request (the transport's own refusals) starts a
  // trace of its own.
  return trace::begin(std::nullopt, 0.0, false).trace_id();
}

void set_error_observer(error_observer o) {
  observer.store(o);
}

const error_context* current_error_context() noexcept {
  return current_context;
}

error_context_scope::error_context_scope(const error_context& c) noexcept : previous_(current_context) {
  current_context = &c;
}

error_context_scope::~error_context_scope() {
  current_context = previous_;
}

void set_error_mode(error_mode m) noexcept {
  mode.store(m);
}

error_mode current_error_mode() noexcept {
  return mode.load(std::memory_order_relaxed);
}

json::value internal_tool_failure(std::string_view tool, std::string_view detail) {
  auto trace = new_trace_id();
  std::string text = "the tool " + std::string(tool) + " failed with an internal error (trace id " + trace + ")";
  if (current_error_mode() == error_mode::development)
    text.append(": ").append(detail);
  if (auto o = observer.load())
    o(trace, error_code::internal_error, text, detail);
  return text_result(std::move(text), true);
}

std::string error_body(const json::value& id, error_code code, std::string_view message, const json::value& given) {
  auto trace = new_trace_id();
  json::value data = given;
  if (data.is_null())
    data = json::value(json::object{});
  std::string detail;
  if (data.is_object()) {
    // An error passed on from a service keeps its trace id, if it has one
    // (an empty one traces nothing: it gets ours).
    if (auto* t = data.find("traceId"); t && t->is_string() && !t->as_string().empty())
      trace = t->as_string();
    else
      data.set("traceId", trace);
    // Internal details go to the log; to the client only in development.
    if (auto* d = data.find("detail"); d && d->is_string()) {
      detail = d->as_string();
      if (current_error_mode() == error_mode::production)
        data.erase("detail");
    }
  }
  if (auto o = observer.load())
    o(trace, code, message, detail);
  std::string out;
  out.reserve(96 + message.size());
  out.append(R"({"jsonrpc":"2.0","id":)");
  write_id(out, id);
  out.append(R"(,"error":{"code":)");
  out.append(std::to_string(to_int(code)));
  out.append(R"(,"message":)");
  json::write_string(out, message);
  if (!data.is_null()) {
    out.append(R"(,"data":)");
    json::write(out, data);
  }
  out.append("}}");
  return out;
}

std::string notification_body(std::string_view method, const json::value& params) {
  std::string out;
  out.append(R"({"jsonrpc":"2.0","method":)");
  json::write_string(out, method);
  if (!params.is_null()) {
    out.append(R"(,"params":)");
    json::write(out, params);
  }
  out.push_back('}');
  return out;
}

std::string request_body(const json::value& id, std::string_view method, const json::value& params) {
  std::string out;
  out.append(R"({"jsonrpc":"2.0","id":)");
  write_id(out, id);
  out.append(R"(,"method":)");
  json::write_string(out, method);
  out.append(R"(,"params":)");
  if (params.is_null())
    out.append("{}");
  else
    json::write(out, params);
  out.push_back('}');
  return out;
}

std::string id_key(const json::value& id) {
  return json::dump(id);
}

// -- HTTP request metadata -----------------------------------------------------------------------

namespace {

constexpr std::string_view b64_prefix = "=?base64?";
constexpr std::string_view b64_suffix = "?=";

using text::header_safe;
using text::trim;

/// Compares a decoded header value with a primitive body value.
bool matches_body(std::string_view header, const json::value& body) {
  switch (body.type()) {
    case json::kind::string:
      return header == body.as_string();
    case json::kind::boolean:
      return header == (body.as_bool() ? "true" : "false");
    case json::kind::integer:
    case json::kind::number: {
      double parsed = 0;
      auto* first = header.data();
      auto* last = header.data() + header.size();
      auto res = std::from_chars(first, last, parsed);
      if (res.ec != std::errc{} || res.ptr != last)
        return false;
      return parsed == body.as_double();
    }
    default:
      return false;
  }
}

/// Collects `x-mcp-header` annotations reachable through `properties` only.
void collect_param_headers(const json::value& schema, std::vector<std::string>& path,
                           std::vector<std::pair<std::string, std::vector<std::string>>>& out, int depth) {
  if (depth > 16)
    return;
  auto* props = schema.find("properties");
  if (!props || !props->is_object())
    return;
  for (auto& [key, sub] : props->as_object()) {
    path.push_back(key);
    if (auto* h = sub.find("x-mcp-header"); h && h->is_string())
      out.emplace_back(h->as_string(), path);
    collect_param_headers(sub, path, out, depth + 1);
    path.pop_back();
  }
}

} // namespace

std::string encode_header_value(std::string_view text) {
  bool plain = header_safe(text) && !text.empty() && text.front() != ' ' && text.back() != ' ' && text.front() != '\t'
               && text.back() != '\t' && text.rfind(b64_prefix, 0) != 0;
  return plain ? std::string(text) : std::string(b64_prefix) + base64_encode(text) + std::string(b64_suffix);
}

bool decode_header_value(std::string_view raw, std::string& out) {
  auto v = trim(raw);
  if (v.size() >= b64_prefix.size() + b64_suffix.size() && v.substr(0, b64_prefix.size()) == b64_prefix
      && v.substr(v.size() - b64_suffix.size()) == b64_suffix) {
    auto payload = v.substr(b64_prefix.size(), v.size() - b64_prefix.size() - b64_suffix.size());
    return base64_decode(payload, out);
  }
  if (!header_safe(v))
    return false;
  out.assign(v);
  return true;
}

const json::value* mirrored_name(std::string_view method, const json::value& params) {
  if (method == "tools/call" || method == "prompts/get")
    return params.find("name");
  if (method == "resources/read")
    return params.find("uri");
  // The tasks extension routes by task: Mcp-Name is the task id.
  if (method == "tasks/get" || method == "tasks/update" || method == "tasks/cancel")
    return params.find("taskId");
  return nullptr;
}

bool declares_extension(const json::value& capabilities, std::string_view extension) {
  return capabilities["extensions"].find(extension) != nullptr;
}

json::value extension_required(std::string_view extension) {
  json::value extensions(json::object{});
  extensions.set(std::string(extension), json::value(json::object{}));
  return json::value::make_object(
    {{"requiredCapabilities", json::value::make_object({{"extensions", std::move(extensions)}})}});
}

bool check_mirrored_headers(const mirrored_headers& h, const json::value& body, const json::value& tool_schema,
                            std::string& why) {
  const auto& method = body["method"].as_string();
  const auto& params = body["params"];
  // MCP-Protocol-Version must be present and equal the _meta version.
  const auto& declared = params["_meta"][meta_protocol_version];
  if (!h.protocol_version) {
    why = "the MCP-Protocol-Version header is missing";
    return false;
  }
  if (declared.is_string() && trim(*h.protocol_version) != declared.as_string()) {
    why = "MCP-Protocol-Version header '" + std::string(trim(*h.protocol_version))
          + "' does not match _meta protocolVersion '" + declared.as_string() + "'";
    return false;
  }
  if (!h.method) {
    why = "the Mcp-Method header is missing";
    return false;
  }
  if (trim(*h.method) != method) {
    why = "Mcp-Method header '" + std::string(trim(*h.method)) + "' does not match body method '" + method + "'";
    return false;
  }
  if (auto* name_source = mirrored_name(method, params)) {
    if (!h.name) {
      why = "the Mcp-Name header is missing";
      return false;
    }
    std::string decoded;
    if (!decode_header_value(*h.name, decoded)) {
      why = "the Mcp-Name header has an invalid value or encoding";
      return false;
    }
    if (!name_source->is_string() || decoded != name_source->as_string()) {
      why = "Mcp-Name header '" + decoded + "' does not match the body value";
      return false;
    }
  }
  // Mcp-Param-* headers for x-mcp-header annotated tool arguments.
  if (method == "tools/call" && tool_schema.is_object()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> annotated;
    std::vector<std::string> path;
    collect_param_headers(tool_schema, path, annotated, 0);
    const auto& args = params["arguments"];
    for (auto& [header_name, prop_path] : annotated) {
      const json::value* v = &args;
      for (auto& step : prop_path) {
        v = v->find(step);
        if (!v)
          break;
      }
      auto wanted = text::lowered(header_name);
      const std::string* raw = nullptr;
      for (auto& [k, val] : h.params)
        if (k == wanted)
          raw = &val;
      // Only primitive values are mirrored (clients send no header for an
      // object or array, which the schema check then refuses with -32602).
      bool present_in_body = v && (v->is_string() || v->is_bool() || v->is_number());
      if (!present_in_body) {
        continue; // A header without a body value is forwarded and ignored.
      }
      if (!raw) {
        why = "the Mcp-Param-" + header_name + " header is missing for a value in the body";
        return false;
      }
      std::string decoded;
      if (!decode_header_value(*raw, decoded)) {
        why = "the Mcp-Param-" + header_name + " header has an invalid value or encoding";
        return false;
      }
      if (!matches_body(decoded, *v)) {
        why = "Mcp-Param-" + header_name + " header does not match the body value";
        return false;
      }
    }
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> param_headers(const json::value& tool_schema,
                                                               const json::value& arguments) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::pair<std::string, std::vector<std::string>>> annotated;
  std::vector<std::string> path;
  collect_param_headers(tool_schema, path, annotated, 0);
  for (auto& [header_name, prop_path] : annotated) {
    const json::value* v = &arguments;
    for (auto& step : prop_path) {
      v = v->find(step);
      if (!v)
        break;
    }
    if (!v || v->is_null())
      continue;
    std::string text;
    if (v->is_string())
      text = v->as_string();
    else if (v->is_bool() || v->is_number())
      text = json::dump(*v);
    else
      continue; // only primitives are mirrored
    out.emplace_back("Mcp-Param-" + header_name, encode_header_value(text));
  }
  return out;
}

// -- helpers ------------------------------------------------------------------------------------

// Built by moving parts in: a braced list would copy every nested level.
json::value text_content(std::string text) {
  json::object block;
  block.reserve(2);
  block.emplace_back("type", json::value("text"));
  block.emplace_back("text", json::value(std::move(text)));
  return json::value(std::move(block));
}

json::value text_result(std::string text, bool is_error) {
  json::array content;
  content.push_back(text_content(std::move(text)));
  json::object r;
  r.reserve(is_error ? 2 : 1);
  r.emplace_back("content", json::value(std::move(content)));
  if (is_error)
    r.emplace_back("isError", json::value(true));
  return json::value(std::move(r));
}

json::value completion_result(std::vector<std::string> values) {
  constexpr std::size_t most = 100;
  auto total = values.size();
  json::value shown(json::array{});
  for (std::size_t i = 0; i < total && i < most; ++i)
    shown.push_back(std::move(values[i]));
  return json::value::make_object({{"completion", json::value::make_object({{"values", std::move(shown)},
                                                                            {"total", static_cast<long long>(total)},
                                                                            {"hasMore", total > most}})}});
}

namespace {
constexpr char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_index(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}
} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out.push_back(b64_chars[(n >> 18) & 63]);
    out.push_back(b64_chars[(n >> 12) & 63]);
    out.push_back(b64_chars[(n >> 6) & 63]);
    out.push_back(b64_chars[n & 63]);
  }
  if (auto rest = bytes.size() - i; rest > 0) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (rest == 2)
      n |= uint8_t(bytes[i + 1]) << 8;
    out.push_back(b64_chars[(n >> 18) & 63]);
    out.push_back(b64_chars[(n >> 12) & 63]);
    out.push_back(rest == 2 ? b64_chars[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool base64_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0)
    return false;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=') {
        // Padding only at the very end, in the last one or two places.
        if (i + 4 != text.size() || j < 2)
          return false;
        ++pad;
        v[j] = 0;
        continue;
      }
      if (pad > 0)
        return false;
      v[j] = b64_index(c);
      if (v[j] < 0)
        return false;
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(char((n >> 16) & 0xFF));
    if (pad < 2)
      out.push_back(char((n >> 8) & 0xFF));
    if (pad < 1)
      out.push_back(char(n & 0xFF));
  }
  return true;
}

} // namespace mcp

} // namespace bulwark

namespace bulwark {

uint64_t reply_sink::next_serial() noexcept {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

void reply_sink::on_close(std::function<void(uint64_t)> listener) {
  std::unique_lock<std::mutex> guard(close_mtx_);
  if (close_seen_) {
    guard.unlock();
    listener(serial_);
    return;
  }
  close_listener_ = std::move(listener);
}

void reply_sink::notify_closed() {
  std::function<void(uint64_t)> listener;
  {
    std::lock_guard<std::mutex> guard(close_mtx_);
    if (close_seen_)
      return;
    close_seen_ = true;
    listener = std::move(close_listener_);
  }
  if (listener && !answered())
    listener(serial_);
}

} // namespace bulwark
