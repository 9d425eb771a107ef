// bulwark-console's rendering of admin API answers as text: aligned tables
// and `label  value` lines, the actor tree, health, queue, cache, alerts,
// breakers, the effective configuration and a reload's outcome.
//
// Server-supplied strings pass through `clean`, so that no control
// character (escape codes among them) reaches the terminal.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "messages/json.hpp"

namespace bulwark::console {

// -- text ----------------------------------------------------------------------

/// `s` made safe for a terminal: line feeds as "\n", other control
/// characters as '?'.
std::string clean(const std::string& s);

/// `x` with at most `decimals` decimals, trailing zeros dropped.
std::string fixed(double x, int decimals);

/// The local time as HH:MM:SS.
std::string clock_now();

/// One cell's worth of a JSON value: "-" for null and empty, "yes"/"no",
/// lists joined by commas, "N items" / "N fields" for what does not fit.
std::string text(const json::value& v);

/// "no", or "yes", with whether degraded mode is forced, from a health
/// report.
std::string degraded_text(const json::value& health);

// -- layout --------------------------------------------------------------------

/// Rows in aligned columns under a header line.
class table {
public:
  explicit table(std::vector<std::string> headers) : right_(headers.size(), false) {
    rows_.push_back(std::move(headers));
  }
  void add(std::vector<std::string> row);
  void align_right(std::size_t column) { right_.at(column) = true; }
  void print(std::ostream& out, const std::string& indent = "") const;

private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

using pairs = std::vector<std::pair<std::string, std::string>>;

/// `label  value` lines, values aligned; a value's further lines line up
/// under its first.
void print_pairs(std::ostream& out, const pairs& lines, const std::string& indent);

/// How member names show.
enum class names {
  labels, ///< "fastFailures" as "fast failures", column headers in capitals
  verbatim, ///< as written, e.g. configuration keys
};

/// Any JSON value: objects as aligned lines with nested members under their
/// names, arrays of records as tables, anything else as one line.
void render(std::ostream& out, const json::value& v, const std::string& indent, names style = names::labels);

/// Records as a table: the `preferred` columns first (those present), then
/// every other member that fits in a cell, in the order first seen.
void render_rows(std::ostream& out, const json::array& rows, const std::vector<std::string>& preferred,
                 const std::string& indent, names style = names::labels);

/// Records from an answer that is an array of objects, or an object keyed by
/// `key` (either possibly wrapped in a member named `wrapper`).
json::array records(const json::value& v, const std::string& wrapper, const std::string& key);

// -- views ---------------------------------------------------------------------

/// GET /admin/api/actors: the tree, supervisors, recent escalations.
void render_actors(std::ostream& out, const json::value& tree);
/// GET /admin/api/health: status, reasons, a line per component.
void render_health(std::ostream& out, const json::value& health);
/// A few lines of health for the live view.
void render_health_brief(std::ostream& out, const json::value& health);
void render_queue(std::ostream& out, const json::value& queue);
void render_cache(std::ostream& out, const json::value& cache);
void render_alerts(std::ostream& out, const json::value& alerts);
/// Tool definition changes held by pinning (the admin API's `tools`): each
/// tool, since when, and each member that differs, before and after.
void render_held_tools(std::ostream& out, const json::value& tools);
/// Breaker records (`records(answer, "breakers", "service")`).
void render_breakers(std::ostream& out, const json::array& rows);

/// GET /admin/api/config: generation, source and load time, then the
/// effective configuration as nested keys and values.
void render_config(std::ostream& out, const json::value& answer);

/// POST /admin/api/config/reload's answer (200 or 422): the outcome and
/// generation, then the changed keys, or each error as "path: message" and
/// the keys that need a restart. Returns false when the reload was refused.
bool render_reload(std::ostream& out, const json::value& answer);

} // namespace bulwark::console
