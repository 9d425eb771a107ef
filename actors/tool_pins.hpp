// Tool-definition pinning (`gateway.pinning`): the definition of each
// service's tool (name, description, input schema, annotations) as first
// seen is approved and kept in a file across restarts. A later change is
// held back until an operator approves it: the approved definition keeps
// being served ("keep") or the tool is hidden ("hide"). The gateway's
// router owns the book; nothing here does more I/O than reading and
// writing the file.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messages/json.hpp"

namespace bulwark {

class pin_book {
public:
  /// A definition's hash as pinning compares them: SHA-256 (hex) of the
  /// canonical JSON of its name, description, inputSchema and annotations.
  static std::string hash_of(const json::value& tool);

  /// Reads the book from `path`; a missing file is an empty book. False
  /// (and `error` says why) for a file that is no pin book.
  bool load(const std::string& path, std::string& error);
  /// Writes the book to `path` (a new file renamed over the old one).
  bool save(const std::string& path, std::string& error) const;

  /// The service's tools (a tools/list array) as pinning lets them be
  /// served: a tool seen for the first time is pinned as it is; one whose
  /// definition differs from its pin is held (its approved definition
  /// served, or with `hide` left out) until approved. `newly_held` gets
  /// the tools whose change was first seen now. Returns whether the book
  /// changed (it is to be saved).
  bool apply(const std::string& service, const json::value& tools, bool hide, json::value& served,
             std::vector<std::string>& newly_held);

  /// Approves the held change of the tool; false when none is held.
  bool approve(const std::string& service, const std::string& tool);

  /// The held changes, each with its service, tool, approved and new
  /// definitions, the members that differ (field, before, after) and when
  /// it was first seen.
  json::value held() const;
  std::size_t held_count() const;

private:
  struct change {
    std::string hash;
    json::value definition;
    std::string seen_at;
  };
  struct pin {
    std::string hash;
    json::value definition;
    std::string approved_at;
    std::optional<change> pending;
  };
  /// service -> tool -> its pin
  std::map<std::string, std::map<std::string, pin>> pins_;
};

} // namespace bulwark
