#include "transport/stdio.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/log.hpp"
#include "messages/actors.hpp"
#include "messages/mcp.hpp"
#include "transport/endpoint.hpp"

namespace bulwark {

namespace {

/// Shared by all sinks of one stdio connection.
struct stdio_channel {
  std::FILE* out;
  std::mutex mtx;
  std::string session_id; ///< Set once initialize has been answered.
  std::atomic<int> in_flight{0};

  void write_line(const std::string& body) {
    std::lock_guard<std::mutex> guard(mtx);
    std::fwrite(body.data(), 1, body.size(), out);
    std::fputc('\n', out);
    std::fflush(out);
  }
};

class stdio_sink final : public reply_sink {
public:
  stdio_sink(std::shared_ptr<stdio_channel> ch, bool long_lived) : ch_(std::move(ch)), long_lived_(long_lived) {
    if (!long_lived_)
      ch_->in_flight++;
  }

  ~stdio_sink() override {
    if (!answered() && !long_lived_ && !request_id().is_null()) {
      mark_answered();
      ch_->write_line(abandoned_body());
    }
    if (!long_lived_)
      ch_->in_flight--;
  }

  void deliver(outbound msg) override {
    if (answered())
      return;
    if (msg.what == outbound::kind::response && !long_lived_ && !mark_answered())
      return;
    if (!msg.session_id.empty()) {
      std::lock_guard<std::mutex> guard(ch_->mtx);
      ch_->session_id = msg.session_id;
    }
    if (!msg.silent)
      ch_->write_line(msg.body);
  }

  bool open() const noexcept override { return true; }

private:
  std::shared_ptr<stdio_channel> ch_;
  bool long_lived_;
};

} // namespace

void serve_stdio(mcp_endpoint& rt, stdio_options opts, std::FILE* in, std::FILE* out) {
  auto ch = std::make_shared<stdio_channel>();
  ch->out = out;
  std::string line;
  bool stream_opened = false;
  int c;
  bool too_long = false;
  auto handle_line = [&](std::string& text) {
    if (text.empty() || text.find_first_not_of(" \t\r") == std::string::npos)
      return;
    json::value msg;
    json::parse_error perr;
    if (!json::parse(text, msg, perr)) {
      ch->write_line(mcp::error_body(json::value(), error_code::parse_error, "Parse error: " + perr.message));
      return;
    }
    auto cls = mcp::classify(msg);
    if (cls.kind == mcp::message_kind::invalid) {
      ch->write_line(mcp::error_body(msg["id"], error_code::invalid_request, "Invalid Request: " + cls.reason));
      return;
    }
    auto item = std::make_shared<inbound>();
    item->kind = cls.kind;
    item->identity = "stdio";
    item->bytes = text.size();
    if (msg["params"]["_meta"][mcp::meta_protocol_version].is_string()) {
      item->stateless = true;
    } else {
      std::lock_guard<std::mutex> guard(ch->mtx);
      item->session_id = ch->session_id;
    }
    if (!item->stateless && item->session_id.empty()
        && !(cls.kind == mcp::message_kind::request && msg["method"].as_string() == "initialize")) {
      if (cls.kind == mcp::message_kind::request)
        ch->write_line(mcp::error_body(msg["id"], error_code::invalid_request,
                                       "send initialize first (or a 2026-07-28 request with _meta)"));
      return;
    }
    if (!stream_opened && !item->session_id.empty()) {
      // Server-initiated notifications of the session (list changes,
      // resource updates) share stdout with everything else.
      stream_opened = rt.open_stream(item->session_id, std::make_shared<stdio_sink>(ch, true), {});
    }
    if (cls.kind == mcp::message_kind::request) {
      auto sink = std::make_shared<stdio_sink>(ch, false);
      sink->set_request_id(msg["id"]);
      item->sink = std::move(sink);
    }
    item->message = std::move(msg);
    rt.dispatch(std::move(item));
  };
  while ((c = std::fgetc(in)) != EOF) {
    if (c == '\n') {
      if (too_long) {
        ch->write_line(mcp::error_body(json::value(), error_code::invalid_request,
                                       "message exceeds " + std::to_string(opts.line_limit) + " bytes"));
        too_long = false;
      } else {
        handle_line(line);
      }
      line.clear();
      continue;
    }
    if (line.size() >= opts.line_limit) {
      too_long = true;
      line.clear();
      continue;
    }
    if (!too_long)
      line.push_back(static_cast<char>(c));
  }
  if (!line.empty() && !too_long)
    handle_line(line);
  // Input closed: let in-flight requests finish (bounded), then return.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ch->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

} // namespace bulwark
