#include "transport/token_request.hpp"

#include <algorithm>
#include <cmath>

#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "messages/text.hpp"

namespace bulwark {

std::string form_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace {

/// The form's parameters shared by both grants, and the client's
/// authentication.
token_request with_client(std::string body, const service_auth& auth, const std::string& service_url,
                          const std::string& client_id, const std::string& client_secret) {
  token_request r;
  r.body = std::move(body);
  if (!auth.scopes.empty()) {
    std::string scope;
    for (auto& s : auth.scopes)
      scope += (scope.empty() ? "" : " ") + s;
    r.body += "&scope=" + form_encode(scope);
  }
  r.body += "&resource=" + form_encode(auth.resource.empty() ? service_url : auth.resource);
  if (!auth.audience.empty())
    r.body += "&audience=" + form_encode(auth.audience);
  if (auth.basic) {
    // RFC 6749 2.3.1: the id and secret are form-encoded, then joined.
    r.headers.emplace_back("Authorization",
                           "Basic " + mcp::base64_encode(form_encode(client_id) + ":" + form_encode(client_secret)));
  } else {
    r.body += "&client_id=" + form_encode(client_id);
    if (!client_secret.empty())
      r.body += "&client_secret=" + form_encode(client_secret);
  }
  r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  r.headers.emplace_back("Accept", "application/json");
  return r;
}

constexpr const char* access_token_type = "urn:ietf:params:oauth:token-type:access_token";

} // namespace

token_request client_credentials_request(const service_auth& auth, const std::string& service_url,
                                         const std::string& client_id, const std::string& client_secret) {
  return with_client("grant_type=client_credentials", auth, service_url, client_id, client_secret);
}

token_request token_exchange_request(const service_auth& auth, const std::string& service_url,
                                     const std::string& client_id, const std::string& client_secret,
                                     const std::string& subject) {
  std::string body = "grant_type=" + form_encode("urn:ietf:params:oauth:grant-type:token-exchange") + "&subject_token="
                     + form_encode(subject) + "&subject_token_type=" + form_encode(access_token_type)
                     + "&requested_token_type=" + form_encode(access_token_type);
  return with_client(std::move(body), auth, service_url, client_id, client_secret);
}

token_grant read_token_response(int status, const std::string& content_type, const std::string& body) {
  token_grant g;
  g.status = status;
  json::value doc;
  bool parsed = false;
  if (content_type == "application/json") {
    json::parse_error err;
    parsed = json::parse(body, doc, err, 16) && doc.is_object();
  }
  if (status != 200) {
    g.error = "the token endpoint answered HTTP " + std::to_string(status);
    // RFC 6749 5.2: an error code from a fixed vocabulary (no secrets).
    if (parsed)
      if (auto* e = doc.find("error"); e && e->is_string() && e->as_string().size() <= 64)
        g.error += " (" + e->as_string() + ")";
    return g;
  }
  if (!parsed) {
    g.error = "the token endpoint's answer is not a JSON object";
    return g;
  }
  auto* token = doc.find("access_token");
  if (!token || !token->is_string() || token->as_string().empty() || !text::header_safe(token->as_string())) {
    g.error = "the token endpoint's answer has no usable access_token";
    return g;
  }
  auto* type = doc.find("token_type");
  if (!type || !type->is_string() || !text::iequals(type->as_string(), "bearer")) {
    g.error = "the token endpoint's answer is not a Bearer token";
    return g;
  }
  if (auto* e = doc.find("expires_in"); e && e->is_number()) {
    double s = e->as_double();
    if (std::isfinite(s) && s > 0)
      g.lifetime = std::chrono::milliseconds(static_cast<long long>(std::min(s, 86400.0 * 366) * 1000));
  }
  g.access_token = token->as_string();
  return g;
}

} // namespace bulwark
