// The gateway's catalog entries for one service's tools, prompts, resources
// and templates, and the path of a call through them: the cache, the
// priority queue, the service's breaker and connector, client input the
// service asks for, and the fallbacks. Entries are built by the router for
// one generation and run on the calling session's actor.
#pragma once

#include <memory>
#include <string>

#include "actors/policy.hpp"
#include "messages/actors.hpp"
#include "messages/catalog.hpp"
#include "messages/json.hpp"
#include "messages/service.hpp"

namespace bulwark {

class runtime;

/// What the entries of one catalog build share: the generation they were
/// built from and the router that built them. Immutable.
struct gateway_context {
  runtime* rt = nullptr;
  gateway_router_actor router;
  gateway_config_ptr cfg;

  /// A service of this generation (null when it has none of that name); the
  /// pointer keeps the generation alive.
  std::shared_ptr<const service_config> service(const std::string& name) const;

  /// Whether any policy applies (a key file may bring keys with their own).
  bool has_policy() const;

  /// Whether the caller may use `service:tool`: the policy of its API key
  /// first (bound to who holds the key), else its agent's
  /// (`clientInfo.name`, which is whatever the client says), else the default.
  policy_decision decide(const client_view& client, const std::string& service, const std::string& tool) const;

  /// Answers a denied call (audited, -32006) and returns true; false when the
  /// policy allows it.
  bool denied(const call_ptr& c, const std::string& service, const std::string& tool) const;
};
using gateway_context_ptr = std::shared_ptr<const gateway_context>;

/// A service's tool under its exposed name: `tool` is its definition as
/// clients see it (overrides applied), `own_name` its name at the service.
tool_spec make_tool(const gateway_context_ptr& ctx, const service_config& s, const json::value& tool,
                    const std::string& exposed, const std::string& own_name);
/// A service's prompt under its exposed name.
prompt_spec make_prompt(const gateway_context_ptr& ctx, const service_config& s, const json::value& prompt,
                        const std::string& exposed);
/// A service's resource (URIs keep their names).
resource_spec make_resource(const gateway_context_ptr& ctx, const service_config& s, const json::value& r);
/// A service's resource template.
resource_template_spec make_template(const gateway_context_ptr& ctx, const service_config& s, const json::value& t);

/// Answers -32005 for a service that is not ready (`status` "starting" or
/// "unavailable", with why).
void fail_not_ready(const call_ptr& c, const std::string& service, const std::string& status,
                    const std::string& problem);

// -- a downstream call's reports (downstream_listener) ------------------------------------

/// The service's breaker passes a downstream call's reports on to the client call
/// they go to (`downstream_call::target`), each as that call's
/// continuation on its session.

/// A progress or log notification of the service.
void relay_notification(const call_ptr& to, const std::string& method, const json::value& params);

/// The service asks the client (method, params, its request id): the call
/// answers input_required with `token` in its state, or refuses for a
/// client without the capability (and tells the service through `connector`).
void relay_input_request(const call_ptr& to, const std::string& token, const std::string& method,
                         const json::value& params, const json::value& request_id, const caf::actor& connector);

/// The downstream call's final outcome: the answer, the fallbacks, or the
/// input a stateless service needs.
void relay_outcome(const downstream_call& dc, const call_ptr& to, downstream_outcome o);

} // namespace bulwark
