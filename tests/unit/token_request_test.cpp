// The OAuth token requests Bulwark makes for a downstream service and the
// reading of the token endpoint's answers.
#include <catch2/catch.hpp>

#include <string>

#include "messages/mcp.hpp"
#include "transport/token_request.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

namespace {

std::string header(const token_request& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("token request: form values are encoded as RFC 6749 appendix B says", "[token]") {
  CHECK(form_encode("abc-._~XYZ019") == "abc-._~XYZ019");
  CHECK(form_encode("a b") == "a+b");
  CHECK(form_encode("a+b/c=d&e:f") == "a%2Bb%2Fc%3Dd%26e%3Af");
  CHECK(form_encode("\xc3\xa9") == "%C3%A9");
  CHECK(form_encode("") == "");
}

TEST_CASE("token request: client credentials with scope and resource, the client by Basic or in the body", "[token]") {
  service_auth a;
  a.type = service_auth::kind::client_credentials;
  a.scopes = {"mcp:tools", "read"};
  auto basic = client_credentials_request(a, "http://svc/mcp", "my id", "s+cret:1");
  CHECK(basic.body == "grant_type=client_credentials&scope=mcp%3Atools+read&resource=http%3A%2F%2Fsvc%2Fmcp");
  std::string decoded;
  auto auth = header(basic, "Authorization");
  REQUIRE(auth.rfind("Basic ", 0) == 0);
  REQUIRE(mcp::base64_decode(auth.substr(6), decoded));
  CHECK(decoded == "my+id:s%2Bcret%3A1"); // each part form-encoded, then joined
  CHECK(header(basic, "Content-Type") == "application/x-www-form-urlencoded");
  CHECK(header(basic, "Accept") == "application/json");

  a.basic = false;
  a.scopes.clear();
  a.resource = "https://api.example/";
  auto body = client_credentials_request(a, "http://svc/mcp", "id", "sec");
  CHECK(body.body
        == "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example%2F&client_id=id&client_secret=sec");
  CHECK(header(body, "Authorization").empty());
}

TEST_CASE("token response: the token and its lifetime, or why not", "[token]") {
  auto ok = read_token_response(200, "application/json",
                                R"({"access_token":"abc.def","token_type":"bearer","expires_in":3600})");
  CHECK(ok.error.empty());
  CHECK(ok.access_token == "abc.def");
  CHECK(ok.lifetime == 3600000ms);

  auto no_expiry = read_token_response(200, "application/json", R"({"access_token":"t","token_type":"Bearer"})");
  CHECK(no_expiry.access_token == "t");
  CHECK(no_expiry.lifetime == 0ms);
  CHECK(read_token_response(200, "application/json", R"({"access_token":"t","token_type":"Bearer","expires_in":-5})")
          .lifetime
        == 0ms);

  auto refused = read_token_response(400, "application/json", R"({"error":"invalid_client","error_description":"x"})");
  CHECK(refused.access_token.empty());
  CHECK(refused.error == "the token endpoint answered HTTP 400 (invalid_client)");
  CHECK(read_token_response(503, "text/html", "<h1>down</h1>").error == "the token endpoint answered HTTP 503");

  CHECK(read_token_response(200, "application/json", R"({"access_token":"t","token_type":"mac"})").error
        == "the token endpoint's answer is not a Bearer token");
  CHECK(read_token_response(200, "application/json", R"({"token_type":"Bearer"})").error
        == "the token endpoint's answer has no usable access_token");
  CHECK(read_token_response(200, "application/json", "{\"access_token\":\"a\\nb\",\"token_type\":\"Bearer\"}").error
        == "the token endpoint's answer has no usable access_token");
  CHECK(read_token_response(200, "text/plain", "access_token=t").error
        == "the token endpoint's answer is not a JSON object");
  CHECK(read_token_response(200, "application/json", "[1]").error
        == "the token endpoint's answer is not a JSON object");
}

TEST_CASE("token request: a token exchange names the caller's token as an access token, with the audience", "[token]") {
  service_auth a;
  a.type = service_auth::kind::token_exchange;
  a.audience = "crm api";
  auto r = token_exchange_request(a, "http://svc/mcp", "id", "sec", "eyJ.a.b");
  CHECK(r.body
        == "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=eyJ.a.b"
           "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
           "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
           "&resource=http%3A%2F%2Fsvc%2Fmcp&audience=crm+api");
  CHECK(header(r, "Authorization").rfind("Basic ", 0) == 0);
}
