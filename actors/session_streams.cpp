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

namespace {

/// "stream-seq", as `next_event_id` writes it.
bool parse_event_id(const std::string& id, uint64_t& stream, uint64_t& seq) {
  auto dash = id.find('-');
  if (dash == std::string::npos)
    return false;
  stream = std::strtoull(id.substr(0, dash).c_str(), nullptr, 10);
  seq = std::strtoull(id.substr(dash + 1).c_str(), nullptr, 10);
  return true;
}

/// Sends `sink` the events of `stream` after `seq` from `events` ((seq,
/// body) pairs, oldest first); `ended`: the last one is the answer that ends
/// a POST's stream, so the resumed stream ends with it, or at once when the
/// client had it all. True when the stream has ended.
template <class Events>
bool replay(const sink_ptr& sink, uint64_t stream, uint64_t seq, const Events& events, bool ended) {
  for (auto& [n, body] : events) {
    if (n <= seq)
      continue;
    outbound out;
    out.what = outbound::kind::notification;
    out.body = body;
    out.event_id = std::to_string(stream) + "-" + std::to_string(n);
    if (ended && n == events.back().first)
      out.what = outbound::kind::response;
    sink->deliver(std::move(out));
  }
  if (!ended)
    return false;
  // A finished POST stream: nothing follows its response, and the session's
  // GET stream (if open) stays the one it is.
  if (events.empty() || events.back().first <= seq) {
    outbound out;
    out.what = outbound::kind::response;
    out.silent = true; // the client had it all: end at once
    sink->deliver(std::move(out));
  }
  return true;
}

} // namespace

void session_state::open_stream(sink_ptr sink, const std::string& last_event_id) {
  // Resume: replay what the client missed on the stream it names.
  uint64_t stream = 0, seq = 0;
  if (!last_event_id.empty() && parse_event_id(last_event_id, stream, seq)) {
    auto s = rec->streams.find(stream);
    if (s != rec->streams.end() && replay(sink, stream, seq, s->second.events, s->second.ended))
      return;
    // The stream of a call that still runs goes on on this connection:
    // what the call sends from now on, its response last, comes here and
    // not to the POST connection the client lost (which nobody reads).
    // Then this is that call's stream, not the session's GET stream.
    for (auto& [serial, r] : calls)
      if (r.stream == stream && r.streamed && !r.call->client().stateless) {
        r.sink = std::move(sink);
        return;
      }
    if (s == rec->streams.end() && env->redis) {
      // Another instance served that stream (it may be gone): replay what
      // the fleet kept of it.
      auto handle = caf::actor_cast<session_actor>(self);
      shared_events(env, rec->id, stream, [handle, sink, last_event_id](json::value kept) {
        caf::anon_send(handle, atom::listen_v, sink, last_event_id, std::move(kept));
      });
      return;
    }
  }
  become_get_stream(std::move(sink));
}

void session_state::resume_stream(sink_ptr sink, const std::string& last_event_id, const json::value& kept) {
  uint64_t stream = 0, seq = 0;
  if (parse_event_id(last_event_id, stream, seq) && kept.is_array() && kept.size() > 0) {
    std::vector<std::pair<uint64_t, std::string>> events;
    for (auto& e : kept.as_array())
      events.emplace_back(static_cast<uint64_t>(e["seq"].as_int()), e["body"].as_string());
    if (replay(sink, stream, seq, events, kept.as_array().back()["last"].as_bool()))
      return;
  }
  become_get_stream(std::move(sink));
}

void session_state::become_get_stream(sink_ptr sink) {
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
  // A task goes on once its request was answered; one whose client left
  // while it was being created ends as cancelled.
  if (i->second.task_running())
    return;
  if (i->second.task_creating()) {
    i->second.call->mark_cancelled();
    i->second.task->early = value::make_object({{"status", "cancelled"}});
    return;
  }
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
