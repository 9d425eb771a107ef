// The admin API under `/admin/api/`: read-only views of the queue, alerts,
// health and actors, and operator actions (kill an actor, force degraded
// mode, open or close a breaker, invalidate cached results), each written
// to the audit log. With an admin token configured every request needs it;
// without one, the views stay readable on the (loopback) server and the
// actions are refused.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "messages/json.hpp"

namespace bulwark {

class http_server;
class runtime;

/// The configuration routes: whoever owns the configuration (the server's
/// `main`) answers them.
struct config_control {
  /// `GET /admin/api/config`: the effective configuration (secrets
  /// redacted), its generation, source and load time.
  std::function<json::value()> view;
  /// `POST /admin/api/config/reload`: reads the configuration again for
  /// the caller at `remote`; the HTTP status and the body.
  std::function<std::pair<int, json::value>(const std::string& remote)> reload;
};

/// Mounts the admin API under `/admin/api/` and the console page at `/admin`.
void add_admin_routes(http_server& server, runtime& rt, config_control control = {});

/// The admin console's web page (self-contained HTML, CSS and script).
const char* admin_page_html();

} // namespace bulwark
