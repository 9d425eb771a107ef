#include "tools/builtin_tools.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include <fcntl.h>
#include <unistd.h>

#include "actors/runtime.hpp"
#include "messages/mcp.hpp"

namespace bulwark {

using json::value;

namespace {

/// One tenth of a `sleep` call: report progress, then wait for the next.
void sleep_step(const call_ptr& c, int64_t done, int64_t total) {
  auto step = std::max<int64_t>(1, total / 10);
  if (done > 0)
    c->progress(static_cast<double>(done), static_cast<double>(total));
  if (done >= total)
    return c->finish(mcp::text_result("slept " + std::to_string(total) + " ms"));
  auto next = std::min(total, done + step);
  c->after(std::chrono::milliseconds(next - done),
           [next, total](const call_ptr& call) { sleep_step(call, next, total); });
}

} // namespace

void register_builtin_tools(runtime& rt) {
  tool_spec echo;
  echo.name = "echo";
  echo.title = "Echo";
  echo.description = "Returns the given text unchanged.";
  echo.input_schema = value::make_object({
    {"type", "object"},
    {"properties",
     value::make_object({{"text", value::make_object({{"type", "string"}, {"description", "Text to return"}})}})},
    {"required", value::make_array({"text"})},
  });
  echo.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
  echo.handler = [](const call_ptr& c) {
    const auto& text = c->arguments()["text"];
    if (!text.is_string())
      return c->fail(error_code::invalid_params, "arguments.text must be a string");
    c->finish(mcp::text_result(text.as_string()));
  };
  rt.add_tool(std::move(echo));

  tool_spec add;
  add.name = "add";
  add.title = "Add";
  add.description = "Adds two numbers.";
  auto number = value::make_object({{"type", "number"}});
  add.input_schema = value::make_object({
    {"type", "object"},
    {"properties", value::make_object({{"a", number}, {"b", number}})},
    {"required", value::make_array({"a", "b"})},
  });
  add.output_schema = value::make_object({
    {"type", "object"},
    {"properties", value::make_object({{"sum", number}})},
    {"required", value::make_array({"sum"})},
  });
  add.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
  add.handler = [](const call_ptr& c) {
    const auto& a = c->arguments()["a"];
    const auto& b = c->arguments()["b"];
    if (!a.is_number())
      return c->fail(error_code::invalid_params, "arguments.a must be a number");
    if (!b.is_number())
      return c->fail(error_code::invalid_params, "arguments.b must be a number");
    value sum = (a.is_integer() && b.is_integer()) ? value(static_cast<long long>(a.as_int() + b.as_int()))
                                                   : value(a.as_double() + b.as_double());
    auto result = mcp::text_result(json::dump(sum));
    result.set("structuredContent", value::make_object({{"sum", sum}}));
    c->finish(std::move(result));
  };
  rt.add_tool(std::move(add));

  tool_spec sleep;
  sleep.name = "sleep";
  sleep.title = "Sleep";
  sleep.description = "Waits for `ms` milliseconds (at most 60000), reporting progress every tenth "
                      "of the way; cancellable.";
  sleep.input_schema = value::make_object({
    {"type", "object"},
    {"properties",
     value::make_object({{"ms", value::make_object({{"type", "integer"}, {"minimum", 0}, {"maximum", 60000}})}})},
    {"required", value::make_array({"ms"})},
  });
  sleep.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
  sleep.handler = [](const call_ptr& c) {
    const auto& ms = c->arguments()["ms"];
    if (!ms.is_integer() || ms.as_int() < 0 || ms.as_int() > 60000)
      return c->fail(error_code::invalid_params, "arguments.ms must be an integer from 0 to 60000");
    auto total = ms.as_int();
    if (total == 0)
      return c->finish(mcp::text_result("slept 0 ms"));
    sleep_step(c, 0, total);
  };
  rt.add_tool(std::move(sleep));
}

} // namespace bulwark

namespace bulwark {

void register_fault_tools(runtime& rt) {
  auto object = [](std::initializer_list<std::pair<std::string, value>> props) {
    value p(json::object{});
    for (auto& [k, v] : props)
      p.set(k, v);
    return value::make_object({{"type", "object"}, {"properties", std::move(p)}});
  };
  auto str = value::make_object({{"type", "string"}});

  tool_spec hang;
  hang.name = "fault_hang";
  hang.description = "Never answers (until cancelled): a hung downstream.";
  hang.input_schema = object({});
  hang.handler = [](const call_ptr&) {};
  rt.add_tool(std::move(hang));

  tool_spec exit_tool;
  exit_tool.name = "fault_exit";
  exit_tool.description = "Ends this server process at once (exit status 3): a crashing downstream.";
  exit_tool.input_schema = object({});
  exit_tool.handler = [](const call_ptr&) { std::_Exit(3); };
  rt.add_tool(std::move(exit_tool));

  tool_spec garbage;
  garbage.name = "fault_garbage";
  garbage.description = "Writes a line that is not JSON to stdout, then answers: a noisy stdio downstream.";
  garbage.input_schema = object({});
  garbage.handler = [](const call_ptr& c) {
    std::fputs("this line is not JSON-RPC {{{\n", stdout);
    std::fflush(stdout);
    c->finish(mcp::text_result("wrote garbage"));
  };
  rt.add_tool(std::move(garbage));

  tool_spec thrower;
  thrower.name = "fault_throw";
  thrower.description = "Throws an exception whose text holds internal details: a buggy tool.";
  thrower.input_schema = object({});
  thrower.handler = [](const call_ptr&) {
    throw std::runtime_error("cannot open /var/lib/bulwark/internal/state.db: permission denied");
  };
  rt.add_tool(std::move(thrower));

  // Counts executions per key, so tests can prove a call ran exactly once.
  // With BULWARK_EXECUTION_LOG set, each execution is also appended to that
  // file (one JSON line, written before the answer), which outlives this
  // process when a test kills it.
  auto counts = std::make_shared<std::map<std::string, int64_t>>();
  int log_fd = -1;
  if (const char* path = std::getenv("BULWARK_EXECUTION_LOG"); path && *path)
    log_fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  tool_spec count;
  count.name = "fault_count";
  count.description = "Counts its executions per key and answers the count; with hangMs it answers late.";
  count.input_schema = object({{"key", str}, {"hangMs", value::make_object({{"type", "integer"}})}});
  count.handler = [counts, log_fd](const call_ptr& c) {
    auto key = c->arguments()["key"].is_string() ? c->arguments()["key"].as_string() : std::string();
    auto n = ++(*counts)[key];
    if (log_fd >= 0) {
      // One write(2) with O_APPEND: whole lines, even with several writers.
      auto line = json::dump(value::make_object({{"key", key}, {"pid", static_cast<long long>(::getpid())}})) + "\n";
      [[maybe_unused]] auto written = ::write(log_fd, line.data(), line.size());
    }
    auto answer = mcp::text_result(std::to_string(n));
    answer.set("structuredContent", value::make_object({{"key", key}, {"executions", static_cast<long long>(n)}}));
    const auto& hang_ms = c->arguments()["hangMs"];
    if (hang_ms.is_integer() && hang_ms.as_int() > 0)
      return c->after(std::chrono::milliseconds(hang_ms.as_int()),
                      [answer](const call_ptr& call) { call->finish(answer); });
    c->finish(std::move(answer));
  };
  count.annotations = value::make_object({{"idempotentHint", false}});
  rt.add_tool(std::move(count));
}

} // namespace bulwark
