// The OAuth 2.0 token requests Bulwark makes for a downstream service, and
// the reading of their answers: client credentials (RFC 6749 4.4) and token
// exchange (RFC 8693), with a `resource` (RFC 8707). The requests are sent by the service's connector
// through an `http_client`; this file only builds and reads them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "messages/service.hpp"

namespace bulwark {

struct token_request {
  std::string body; ///< application/x-www-form-urlencoded
  std::vector<std::pair<std::string, std::string>> headers;
};

/// `text` as a form value (RFC 6749 appendix B: unreserved characters as
/// they are, a space as '+', every other byte as %XX).
std::string form_encode(std::string_view text);

/// The request for a client-credentials token; `client_id` and
/// `client_secret` are the resolved values of the settings, `service_url`
/// the default `resource`.
token_request client_credentials_request(const service_auth& auth, const std::string& service_url,
                                         const std::string& client_id, const std::string& client_secret);

/// The request that exchanges the caller's access token `subject` for one
/// meant for the service (RFC 8693): `resource` as above, `audience` and
/// `scope` when configured, the client authenticated as for client
/// credentials.
token_request token_exchange_request(const service_auth& auth, const std::string& service_url,
                                     const std::string& client_id, const std::string& client_secret,
                                     const std::string& subject);

/// What a token endpoint's answer grants: the token and its lifetime, or
/// why not (HTTP status, the endpoint's `error` code, a token type other
/// than Bearer, a body that is no token response).
token_grant read_token_response(int status, const std::string& content_type, const std::string& body);

} // namespace bulwark
