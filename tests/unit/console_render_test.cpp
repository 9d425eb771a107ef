// bulwark-console's rendering of the configuration views: `config` (GET
// /admin/api/config) and `reload` (POST /admin/api/config/reload, 200 or 422).
#include <catch2/catch.hpp>

#include <sstream>

#include "messages/json.hpp"
#include "tests/unit/support.hpp"
#include "tools/console_render.hpp"

using namespace bulwark;
using json::value;

namespace {

std::string config_text(std::string_view answer) {
  std::ostringstream out;
  console::render_config(out, test::parse(answer));
  return out.str();
}

std::pair<bool, std::string> reload_text(std::string_view answer) {
  std::ostringstream out;
  bool applied = console::render_reload(out, test::parse(answer));
  return {applied, out.str()};
}

} // namespace

TEST_CASE("console config: the header lines, then the settings under their keys as written") {
  auto out = config_text(R"({"generation":3,"source":"/etc/bulwark/server.json","loadedAt":"2026-12-06T16:00:00Z",
    "config":{"http":{"port":8080,"host":"127.0.0.1"},"health":{"intervalMs":100},
              "services":{"fx":{"headers":{"Authorization":"[redacted]"},"timeoutMs":5000}}}})");
  CHECK(out.rfind("generation  3\n"
                  "source      /etc/bulwark/server.json\n"
                  "loaded at   2026-12-06T16:00:00Z\n"
                  "config:\n",
                  0)
        == 0);
  CHECK(out.find("  http:\n    port  8080\n    host  127.0.0.1\n") != std::string::npos);
  // Configuration keys are not turned into labels ("interval ms").
  CHECK(out.find("    intervalMs  100\n") != std::string::npos);
  CHECK(out.find("      timeoutMs  5000\n") != std::string::npos);
  CHECK(out.find("        Authorization  [redacted]\n") != std::string::npos);
}

TEST_CASE("console config: embedded defaults, an empty configuration, control characters") {
  auto out =
    config_text(R"({"generation":1,"source":"embedded defaults","loadedAt":"2026-12-06T16:00:00Z","config":{}})");
  CHECK(out.find("source      embedded defaults\n") != std::string::npos);
  CHECK(out.find("config: -\n") != std::string::npos);
  auto hostile = config_text(R"({"generation":1,"source":"x\u001b[2Jy","config":{"a\u001bb":"c\u0007"}})");
  CHECK(hostile.find('\x1b') == std::string::npos);
  CHECK(hostile.find('\x07') == std::string::npos);
}

TEST_CASE("console reload: applied, with the changed keys") {
  auto [applied, out] =
    reload_text(R"({"outcome":"applied","generation":4,"changed":["health.intervalMs","services.fx.timeoutMs"]})");
  CHECK(applied);
  CHECK(out
        == "outcome     applied\n"
           "generation  4\n"
           "changed     health.intervalMs\n"
           "            services.fx.timeoutMs\n");
}

TEST_CASE("console reload: unchanged, the list empty or missing") {
  for (auto answer :
       {R"({"outcome":"unchanged","generation":4,"changed":[]})", R"({"outcome":"unchanged","generation":4})"}) {
    auto [applied, out] = reload_text(answer);
    CHECK(applied);
    CHECK(out == "outcome     unchanged\ngeneration  4\nchanged     nothing\n");
  }
}

TEST_CASE("console reload: refused, each error as path: message, and what needs a restart") {
  auto [applied, out] = reload_text(R"({"outcome":"refused","generation":4,
    "errors":[{"path":"$.services.x.timeout","message":"must be at least 1"},{"path":"$.http","message":"unknown key 'prot'"}],
    "restartRequired":["http.port","http.host"]})");
  CHECK_FALSE(applied);
  CHECK(out
        == "outcome     refused\n"
           "generation  4\n"
           "errors:\n"
           "  $.services.x.timeout: must be at least 1\n"
           "  $.http: unknown key 'prot'\n"
           "needs a restart: http.port, http.host\n");
}

TEST_CASE("console reload: refused with only one of the lists") {
  auto [a1, restart_only] =
    reload_text(R"({"outcome":"refused","generation":2,"errors":[],"restartRequired":["http.port"]})");
  CHECK_FALSE(a1);
  CHECK(restart_only == "outcome     refused\ngeneration  2\nneeds a restart: http.port\n");
  auto [a2, errors_only] =
    reload_text(R"({"outcome":"refused","generation":2,"errors":[{"path":"$.x","message":"bad"}]})");
  CHECK_FALSE(a2);
  CHECK(errors_only == "outcome     refused\ngeneration  2\nerrors:\n  $.x: bad\n");
}

TEST_CASE("console tools: each held change with what differs, before and after") {
  std::ostringstream out;
  console::render_held_tools(out, test::parse(R"({"pinning":"keep","held":[{"service":"words","tool":"lookup",
    "seenAt":"2026-12-07T10:00:00.000Z","changes":[{"field":"description","before":"Looks up.","after":"Looks up\u001b[2J."},
    {"field":"inputSchema","before":{"type":"object"},"after":{"type":"object","required":["x"]}}]}]})"));
  CHECK(out.str()
        == "words:lookup  held since 2026-12-07T10:00:00.000Z (approved definition served; approve words lookup)\n"
           "  description\n"
           "    - Looks up.\n"
           "    + Looks up?[2J.\n"
           "  inputSchema\n"
           "    - {\"type\":\"object\"}\n"
           "    + {\"type\":\"object\",\"required\":[\"x\"]}\n");
  std::ostringstream none, off;
  console::render_held_tools(none, test::parse(R"({"pinning":"hide","held":[]})"));
  CHECK(none.str() == "no held tool changes (pinning: hide)\n");
  console::render_held_tools(off, test::parse(R"({"status":"not running"})"));
  CHECK(off.str().rfind("pinning is off", 0) == 0);
}
