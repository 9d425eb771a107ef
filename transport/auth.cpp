#include "transport/auth.hpp"

#include "config/api_keys.hpp"
#include "messages/text.hpp"

namespace bulwark {

std::string_view bearer_token(std::string_view authorization) noexcept {
  auto v = text::trim(authorization);
  if (v.size() <= 7 || !text::iequals(v.substr(0, 7), "bearer "))
    return {};
  return text::trim(v.substr(7));
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

} // namespace

std::shared_ptr<const authenticator> key_authenticator(std::shared_ptr<key_store> keys, std::string realm) {
  return std::make_shared<keys_authenticator>(std::move(keys), std::move(realm));
}

} // namespace bulwark
