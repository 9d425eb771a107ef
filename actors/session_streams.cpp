// A session's SSE streams: the 2025-era GET stream and its replay after
// Last-Event-ID, standalone messages, closed response streams, and
// server-wide notifications to the session's streams and listeners.
#include "actors/session.hpp"

#include <algorithm>
#include <exception>

#include <caf/all.hpp>

#include "actors/operations.hpp"
#include "actors/shared_state.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/crypto.hpp"
#include "messages/schema.hpp"

namespace bulwark {

using json::value;

// -- streams -----------------------------------------------------------------------------------------

void session_state::open_stream(sink_ptr sink, const std::string& last_event_id) {
  // Resume: replay what the client missed on the stream it names.
  if (!last_event_id.empty()) {
    auto dash = last_event_id.find('-');
    if (dash != std::string::npos) {
      uint64_t stream = std::strtoull(last_event_id.substr(0, dash).c_str(), nullptr, 10);
      uint64_t seq = std::strtoull(last_event_id.substr(dash + 1).c_str(), nullptr, 10);
      if (auto s = rec->streams.find(stream); s != rec->streams.end()) {
        const auto& events = s->second.events;
        for (auto& [n, body] : events) {
          if (n <= seq)
            continue;
          outbound out;
          out.what = outbound::kind::notification;
          out.body = body;
          out.event_id = std::to_string(stream) + "-" + std::to_string(n);
          // The response that ended a POST's stream ends the resumed one.
          if (s->second.ended && n == events.back().first)
            out.what = outbound::kind::response;
          sink->deliver(std::move(out));
        }
        if (s->second.ended) {
          // A finished POST stream: nothing follows its response, and the
          // session's GET stream (if open) stays the one it is.
          if (events.empty() || events.back().first <= seq) {
            outbound out;
            out.what = outbound::kind::response;
            out.silent = true; // the client had it all: end at once
            sink->deliver(std::move(out));
          }
          return;
        }
      }
      // The stream of a call that still runs goes on on this connection:
      // what the call sends from now on, its response last, comes here and
      // not to the POST connection the client lost (which nobody reads).
      // Then this is that call's stream, not the session's GET stream.
      for (auto& [serial, r] : calls)
        if (r.stream == stream && r.streamed && !r.call->client().stateless) {
          r.sink = std::move(sink);
          return;
        }
    }
  }
  get_stream = std::move(sink);
  get_stream_id = rec->next_stream++;
  auto self_handle = caf::actor_cast<session_actor>(self);
  get_stream->on_close([self_handle](uint64_t s) { caf::anon_send(self_handle, atom::closed_v, s); });
}

void session_state::send_standalone(std::string body) {
  if (!get_stream || !get_stream->open())
    return;
  outbound out;
  out.what = outbound::kind::notification;
  out.event_id = next_event_id(get_stream_id, body);
  out.body = std::move(body);
  get_stream->deliver(std::move(out));
}

void session_state::stream_closed(uint64_t serial) {
  if (get_stream && get_stream->serial() == serial) {
    get_stream.reset();
    return;
  }
  for (auto l = listeners.begin(); l != listeners.end(); ++l) {
    if (l->sink->serial() == serial) {
      listeners.erase(l);
      return;
    }
  }
  auto i = calls.find(serial);
  if (i == calls.end())
    return;
  // 2026-07-28: closing the response stream cancels the request. A 2025-era
  // client may reconnect and resume, so its call keeps running.
  if (i->second.call->client().stateless) {
    i->second.call->mark_cancelled();
    outbound out;
    out.body = mcp::error_body(i->second.id, error_code::request_cancelled, "the client closed the response stream");
    end_call(serial, std::move(out));
  }
}

void session_state::broadcast(const std::string& method, const json::value& params) {
  bool resource_update = method == "notifications/resources/updated";
  const auto& uri = params["uri"].as_string();
  if (method == "notifications/message") {
    // Server-wide log messages (degraded mode, alerts): 2025-era sessions
    // at or below their log level; alerts only to admin keys' sessions.
    if (rec->stateless)
      return;
    auto lvl = parse_log_level(params["level"].as_string());
    if (lvl && *lvl < rec->min_level)
      return;
    if (params["_meta"]["io.bulwark/audience"].as_string() == "admin") {
      const auto& admins = env->opts.ops.admin_identities;
      if (std::find(admins.begin(), admins.end(), rec->identity) == admins.end())
        return;
    }
    send_standalone(mcp::notification_body(method, params));
    return;
  }
  if (!rec->stateless) {
    if (resource_update && !rec->subscriptions.contains(uri))
      return;
    send_standalone(mcp::notification_body(method, params));
    return;
  }
  for (auto& l : listeners) {
    bool wanted = (method == "notifications/tools/list_changed" && l.tools)
                  || (method == "notifications/prompts/list_changed" && l.prompts)
                  || (method == "notifications/resources/list_changed" && l.resources)
                  || (resource_update && l.uris.contains(uri));
    if (!wanted)
      continue;
    value p = params.is_object() ? params : value(json::object{});
    auto meta = p["_meta"].is_object() ? p["_meta"] : value(json::object{});
    meta.set(std::string(mcp::meta_subscription_id), l.subscription_id);
    p.set("_meta", std::move(meta));
    outbound out;
    out.what = outbound::kind::notification;
    out.body = mcp::notification_body(method, p);
    l.sink->deliver(std::move(out));
  }
}

} // namespace bulwark
