#include "transport/http_request.hpp"

#include "messages/text.hpp"

namespace bulwark {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

using text::iequals;
using text::lower;
using text::trim;

/// Host part of a Host header or an origin's authority, without the port.
std::string_view host_only(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  auto colon = authority.find(':');
  return authority.substr(0, colon);
}

bool loopback_name(std::string_view host) {
  return iequals(host, "localhost") || host == "127.0.0.1" || host == "[::1]";
}

} // namespace

std::string http_refusal::body() const {
  return mcp::error_body(id, code, message);
}

// -- framing -------------------------------------------------------------------

http_request_reader::step http_request_reader::refuse(int status, std::string message) {
  refusal_ = http_refusal{status, error_code::invalid_request, std::move(message), {}};
  return step::refused;
}

http_request_reader::step http_request_reader::read(beast::flat_buffer& buffer) {
  while (buffer.size() > 0) {
    if (!parser_) {
      auto data = buffer.data();
      std::string_view bytes(static_cast<const char*>(data.data()), data.size());
      // Resume the search where the last one stopped: a header that
      // arrives a byte at a time is scanned once, not once per byte.
      auto end = bytes.find("\r\n\r\n", scanned_ > 3 ? scanned_ - 3 : 0);
      if (end == std::string_view::npos) {
        scanned_ = bytes.size();
        if (bytes.size() > header_limit_)
          return refuse(431, "the request header block exceeds its limit");
        return step::need_more;
      }
      scanned_ = 0;
      if (end + 4 > header_limit_)
        return refuse(431, "the request header block exceeds its limit");
      // Obsolete line folding: a header line that starts with white space.
      for (std::size_t i = 0; i + 1 < end; ++i)
        if (bytes[i] == '\n' && (bytes[i + 1] == ' ' || bytes[i + 1] == '\t'))
          return refuse(400, "obsolete header line folding is not accepted");
      parser_.emplace();
      parser_->header_limit(static_cast<std::uint32_t>(header_limit_));
      parser_->body_limit(body_limit_);
      parser_->eager(true);
      header_checked_ = false;
    }
    beast::error_code ec;
    auto used = parser_->put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == http::error::need_more)
      return step::need_more;
    if (ec) {
      if (ec == http::error::body_limit)
        return refuse(413, "the request body exceeds " + std::to_string(body_limit_) + " bytes");
      if (ec == http::error::header_limit)
        return refuse(431, "the request header block exceeds its limit");
      return refuse(400, "malformed HTTP request: " + ec.message());
    }
    if (parser_->is_header_done() && !header_checked_) {
      header_checked_ = true;
      if (!check_framing())
        return step::refused;
    }
    if (!parser_->is_done()) {
      if (used == 0)
        return step::need_more;
      continue;
    }
    return step::ready;
  }
  return step::need_more;
}

void http_request_reader::reset() noexcept {
  parser_.reset();
  scanned_ = 0;
  continue_ = false;
}

http_request http_request_reader::take() {
  auto req = parser_->release();
  parser_.reset();
  return req;
}

bool http_request_reader::check_framing() {
  auto& req = parser_->get();
  auto cl = req.count(http::field::content_length);
  auto te = req.find(http::field::transfer_encoding);
  if (cl > 1) {
    refuse(400, "more than one Content-Length header");
    return false;
  }
  if (req.count(http::field::transfer_encoding) > 1) {
    refuse(400, "more than one Transfer-Encoding header");
    return false;
  }
  if (te != req.end()) {
    if (cl > 0) {
      refuse(400, "Transfer-Encoding together with Content-Length is not accepted");
      return false;
    }
    if (!iequals(trim(text::view(te->value())), "chunked")) {
      refuse(400, "unsupported transfer coding: only chunked is accepted");
      return false;
    }
  }
  if (auto expect = req.find(http::field::expect); expect != req.end())
    continue_ = iequals(trim(text::view(expect->value())), "100-continue");
  return true;
}

// -- the request ---------------------------------------------------------------

bool http_origin_allowed(const http_options& opts, const http_request& req) {
  if (!opts.check_origin)
    return true;
  auto allowed_host = [&](std::string_view host) {
    if (loopback_name(host))
      return true;
    for (auto& h : opts.allowed_hosts)
      if (iequals(h, host))
        return true;
    return false;
  };
  if (auto host = req.find(http::field::host); host != req.end()) {
    if (!allowed_host(host_only(trim(text::view(host->value())))))
      return false;
  }
  if (auto origin = req.find(http::field::origin); origin != req.end()) {
    auto o = trim(text::view(origin->value()));
    for (auto& allowed : opts.allowed_origins)
      if (o == allowed)
        return true;
    auto scheme = o.find("://");
    if (scheme == std::string_view::npos)
      return false;
    return loopback_name(host_only(o.substr(scheme + 3)));
  }
  return true;
}

bool http_accepts(std::string_view accept, std::string_view type) {
  auto slash = type.find('/');
  auto major = type.substr(0, slash);
  while (!accept.empty()) {
    auto comma = accept.find(',');
    auto item = trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    auto semi = item.find(';');
    auto range = trim(item.substr(0, semi));
    if (semi != std::string_view::npos) {
      // "q=0" refuses the type.
      auto params = item.substr(semi + 1);
      auto q = params.find("q=");
      if (q != std::string_view::npos) {
        auto qv = trim(params.substr(q + 2));
        if (!qv.empty() && qv.front() == '0' && qv.find_first_not_of("0.") == std::string_view::npos)
          continue;
      }
    }
    if (range == "*/*" || iequals(range, type))
      return true;
    if (range.size() == major.size() + 2 && iequals(range.substr(0, major.size()), major)
        && range.substr(major.size()) == "/*")
      return true;
  }
  return false;
}

mcp_header_set collect_mcp_headers(const http_request& req) {
  mcp_header_set out;
  auto take = [](std::optional<std::string>& slot, std::string_view value) {
    if (!slot)
      slot.emplace(value);
  };
  for (auto& f : req) {
    auto name = text::view(f.name_string());
    if (name.size() < 7 || !iequals(name.substr(0, 4), "mcp-"))
      continue;
    auto rest = name.substr(4);
    auto value = text::view(f.value());
    if (iequals(rest, "session-id"))
      take(out.session_id, value);
    else if (iequals(rest, "protocol-version"))
      take(out.protocol_version, value);
    else if (iequals(rest, "method"))
      take(out.method, value);
    else if (iequals(rest, "name"))
      take(out.name, value);
    else if (rest.size() > 6 && iequals(rest.substr(0, 6), "param-")) {
      std::string suffix(rest.substr(6));
      for (auto& c : suffix)
        c = lower(c);
      out.params.emplace_back(std::move(suffix), std::string(value));
    }
  }
  return out;
}

std::optional<http_refusal> judge_post_body(http_request& req, http_post_message& out) {
  // Media types.
  auto ct = req.find(http::field::content_type);
  if (ct == req.end()
      || !iequals(trim(text::view(ct->value()).substr(0, text::view(ct->value()).find(';'))), "application/json"))
    return http_refusal{415, error_code::invalid_request, "Content-Type must be application/json", {}};
  auto accept_it = req.find(http::field::accept);
  std::string_view accept = accept_it == req.end() ? std::string_view("*/*") : text::view(accept_it->value());
  if (!http_accepts(accept, "application/json") || !http_accepts(accept, "text/event-stream"))
    return http_refusal{
      406, error_code::invalid_request, "Accept must list application/json and text/event-stream", {}};

  // Body: simdjson wants padding after the input.
  auto& body = req.body();
  json::parse_error perr;
  if (body.capacity() < body.size() + json::padding())
    body.reserve(body.size() + json::padding());
  if (!json::parse_padded(body, out.msg, perr))
    return http_refusal{400, error_code::parse_error, "Parse error: " + perr.message, {}};
  out.cls = mcp::classify(out.msg);
  if (out.cls.kind == mcp::message_kind::invalid)
    return http_refusal{400, error_code::invalid_request, "Invalid Request: " + out.cls.reason, out.msg["id"]};
  return std::nullopt;
}

std::optional<http_refusal> judge_post_route(mcp_header_set& headers, const http_post_message& m,
                                             const http_session_lookup& lookup, http_post_route& out) {
  const auto& msg = m.msg;
  auto kind = m.cls.kind;
  auto& session_id = headers.session_id;
  auto& version_header = headers.protocol_version;
  const auto& method = msg["method"].as_string();
  const auto& meta_version = msg["params"]["_meta"][mcp::meta_protocol_version];
  auto refuse = [&](error_code code, std::string message) {
    return http_refusal{400, code, std::move(message), msg["id"]};
  };
  // Era: a live 2025-era session; else a 2026-07-28 version header or _meta
  // version; else a new session (initialize) or a refusal.
  bool modern_header = version_header && !mcp::is_stateful_version(trim(*version_header));
  std::string sid = session_id ? std::string(trim(*session_id)) : std::string();
  if (!sid.empty() && !modern_header && lookup.has_session(sid)) {
    out.session_id = sid;
  } else if (modern_header || meta_version.is_string()) {
    out.stateless = true;
  } else if (!sid.empty()) {
    auto r = refuse(error_code::invalid_request, "session not found: it ended or never existed; initialize a new one");
    r.status = 404;
    return r;
  } else if (kind == mcp::message_kind::request && method == "initialize") {
    // A new 2025-era session.
  } else {
    return refuse(error_code::invalid_request,
                  "Bad Request: Mcp-Session-Id header is required (initialize first, or send a "
                  "2026-07-28 request with _meta)");
  }

  if (!out.stateless)
    return std::nullopt;
  if (kind == mcp::message_kind::response)
    return refuse(error_code::invalid_request, "clients do not send responses in 2026-07-28");
  if (kind == mcp::message_kind::notification) {
    out.acknowledge_only = true;
    return std::nullopt;
  }
  // The mirrored headers must agree with the body.
  mcp::mirrored_headers mh;
  mh.protocol_version = version_header;
  mh.method = std::move(headers.method);
  mh.name = std::move(headers.name);
  mh.params = std::move(headers.params);
  static const json::value no_schema;
  const json::value* schema = &no_schema;
  if (method == "tools/call")
    if (auto* s = lookup.tool_schema(msg["params"]["name"].as_string()))
      schema = s;
  std::string why;
  if (!mcp::check_mirrored_headers(mh, msg, *schema, why))
    return refuse(error_code::header_mismatch, "Header mismatch: " + why);
  return std::nullopt;
}

} // namespace bulwark
