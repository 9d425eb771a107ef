// The admin API under `/admin/api/`: read-only views of the queue, alerts,
// health and actors, and operator actions (kill an actor, force degraded
// mode, open or close a breaker, invalidate cached results), each written
// to the audit log. With an admin token configured every request needs it;
// without one, the views stay readable on the (loopback) server and the
// actions are refused.
#pragma once

namespace bulwark {

class http_server;
class runtime;

/// Mounts the admin API under `/admin/api/` and the console page at `/admin`.
void add_admin_routes(http_server& server, runtime& rt);

/// The admin console's web page (self-contained HTML, CSS and script).
const char* admin_page_html();

} // namespace bulwark
