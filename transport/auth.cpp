#include "transport/auth.hpp"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "config/api_keys.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"
#include "messages/json.hpp"
#include "messages/jwt.hpp"
#include "messages/text.hpp"

namespace bulwark {

std::vector<std::string> granted_scopes(const jwt::claims& claims,
                                        const std::map<std::string, std::vector<std::string>>& claim_scopes) {
  std::vector<std::string> out;
  auto add = [&](std::string_view s) {
    if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end())
      out.emplace_back(s);
  };
  std::string_view rest = claims.scope;
  while (!rest.empty()) {
    auto sp = rest.find(' ');
    add(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  for (auto& [rule, scopes] : claim_scopes) {
    auto eq = rule.find('=');
    const auto& claim = claims.payload[rule.substr(0, eq)];
    auto want = std::string_view(rule).substr(eq + 1);
    bool has = (claim.is_string() && claim.as_string() == want)
               || (claim.is_array() && std::any_of(claim.as_array().begin(), claim.as_array().end(), [&](auto& x) {
                     return x.is_string() && x.as_string() == want;
                   }));
    if (has)
      for (auto& s : scopes)
        add(s);
  }
  return out;
}

std::string_view bearer_token(std::string_view authorization) noexcept {
  auto v = text::trim(authorization);
  if (v.size() <= 7 || !text::iequals(v.substr(0, 7), "bearer "))
    return {};
  return text::trim(v.substr(7));
}

bool bearer_matches(const std::string& sha256, const std::string& authorization) {
  if (sha256.empty() || authorization.size() <= 7 || authorization.compare(0, 7, "Bearer ") != 0)
    return false;
  return crypto::constant_time_equal(crypto::sha256_hex(authorization.substr(7)), sha256);
}

namespace {

class keys_authenticator final : public authenticator {
public:
  keys_authenticator(std::shared_ptr<key_store> keys, std::string realm)
      : keys_(std::move(keys)), realm_(std::move(realm)) {}

  auth_verdict check(std::string_view authorization) const override {
    auth_verdict v;
    auto token = bearer_token(authorization);
    if (token.empty()) {
      // RFC 6750: no credentials at all gets a bare challenge.
      v.challenge = "Bearer realm=\"" + realm_ + "\"";
      v.message = "Unauthorized: this server needs an API key (Authorization: Bearer <key>)";
      return v;
    }
    auto key = keys_->authenticate(token);
    if (!key) {
      v.challenge = "Bearer realm=\"" + realm_ + "\", error=\"invalid_token\"";
      v.message = "Unauthorized: the API key is not valid (unknown or revoked)";
      v.credential_present = true;
      return v;
    }
    v.ok = true;
    v.identity = "key:" + key->sha256;
    return v;
  }

private:
  std::shared_ptr<key_store> keys_;
  std::string realm_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw jwt::jwks_error("JWK Set " + path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class jwt_authenticator final : public authenticator {
public:
  explicit jwt_authenticator(oauth_settings s)
      : settings_(std::move(s)),
        watch_(settings_.jwks_file, std::chrono::seconds(1)),
        keys_(
          std::make_shared<const jwt::key_set>(jwt::parse_jwks(read_text(settings_.jwks_file), settings_.jwks_file))) {
    expect_.issuer = settings_.issuer;
    expect_.audience = settings_.resource;
    expect_.clock_skew = settings_.clock_skew;
    challenge_ = "Bearer resource_metadata=\"" + resource_metadata_url(settings_) + "\"";
    if (!settings_.scopes_supported.empty()) {
      std::string scopes;
      for (auto& sc : settings_.scopes_supported)
        scopes.append(scopes.empty() ? "" : " ").append(sc);
      challenge_.append(", scope=\"").append(scopes).append("\"");
    }
    log::info("authentication: OAuth access tokens",
              json::value::make_object({{"issuer", settings_.issuer},
                                        {"resource", settings_.resource},
                                        {"jwksFile", settings_.jwks_file},
                                        {"keys", static_cast<unsigned long long>(keys_->keys.size())},
                                        {"keysSkipped", static_cast<unsigned long long>(keys_->skipped)}}));
  }

  auth_verdict check(std::string_view authorization) const override {
    auth_verdict v;
    auto token = bearer_token(authorization);
    if (token.empty()) {
      v.challenge = challenge_;
      v.message = "Unauthorized: this server needs an OAuth access token (Authorization: Bearer <token>); "
                  "see the resource metadata named in WWW-Authenticate";
      return v;
    }
    if (watch_.due() && watch_.changed())
      reload();
    jwt::claims claims;
    auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto why = jwt::verify(token, *current(), expect_, now, claims);
    if (!why.empty()) {
      v.challenge = challenge_ + ", error=\"invalid_token\"";
      v.message = "Unauthorized: " + why;
      v.credential_present = true;
      return v;
    }
    v.ok = true;
    v.identity = "oauth:" + crypto::sha256_hex(claims.issuer + "\n" + claims.subject);
    v.forwardable = true;
    v.scopes = granted_scopes(claims, settings_.claim_scopes);
    return v;
  }

private:
  std::shared_ptr<const jwt::key_set> current() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return keys_;
  }

  void reload() const {
    try {
      auto set =
        std::make_shared<const jwt::key_set>(jwt::parse_jwks(read_text(settings_.jwks_file), settings_.jwks_file));
      auto n = set->keys.size();
      {
        std::lock_guard<std::mutex> guard(mtx_);
        keys_ = std::move(set);
      }
      log::info("JWK Set reloaded", json::value::make_object(
                                      {{"path", settings_.jwks_file}, {"keys", static_cast<unsigned long long>(n)}}));
    } catch (const std::exception& e) {
      log::error("JWK Set not reloaded; the previous keys stay in force",
                 json::value::make_object({{"path", settings_.jwks_file}, {"error", e.what()}}));
    }
  }

  oauth_settings settings_;
  jwt::expectations expect_;
  std::string challenge_;
  mutable file_watch watch_;
  mutable std::mutex mtx_;
  mutable std::shared_ptr<const jwt::key_set> keys_;
};

} // namespace

std::string resource_metadata(const oauth_settings& s) {
  json::value servers(json::array{});
  for (auto& a : s.authorization_servers.empty() ? std::vector<std::string>{s.issuer} : s.authorization_servers)
    servers.push_back(a);
  auto doc = json::value::make_object({{"resource", s.resource},
                                       {"authorization_servers", std::move(servers)},
                                       {"bearer_methods_supported", json::value::make_array({"header"})}});
  if (!s.scopes_supported.empty()) {
    json::value scopes(json::array{});
    for (auto& sc : s.scopes_supported)
      scopes.push_back(sc);
    doc.set("scopes_supported", std::move(scopes));
  }
  return json::dump(doc);
}

std::shared_ptr<const authenticator> oauth_authenticator(oauth_settings s) {
  return std::make_shared<jwt_authenticator>(std::move(s));
}

std::shared_ptr<const authenticator> key_authenticator(std::shared_ptr<key_store> keys, std::string realm) {
  return std::make_shared<keys_authenticator>(std::move(keys), std::move(realm));
}

} // namespace bulwark
