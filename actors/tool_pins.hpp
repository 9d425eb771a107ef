// Tool-definition pinning (`gateway.pinning`): the definition of each
// service's tool (name, description, input schema, annotations) as first
// seen is approved and kept across restarts, in a file or, for a fleet, in
// Redis. A later change is held back until an operator approves it: the
// approved definition keeps being served ("keep") or the tool is hidden
// ("hide"). The gateway's router owns the book; nothing here does more I/O
// than reading and writing the file.
//
// In Redis each tool's pin is one field of a hash ("service\ntool"), its
// text a state line ("pin hash, space, held hash or -") and the entry's
// JSON. Every write replaces only the state it was made from, so that two
// instances that see one tool first, or one change, cannot overwrite each
// other: the loser reads the book again.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messages/json.hpp"

namespace bulwark {

/// A pin that changed, to be written to the fleet's book: its field, the
/// state line it replaced (empty: the field was not there) and its text.
struct pin_write {
  std::string field;
  std::string expected;
  std::string text;
};

class pin_book {
public:
  /// A book shared by a fleet keeps a held change until it is approved,
  /// even when this instance's service goes back to the approved
  /// definition or shows yet another one: instances that see different
  /// definitions would otherwise replace each other's held change forever.
  explicit pin_book(bool shared = false) : shared_(shared) {}

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

  /// The pins changed by `apply` and `approve` since the last call.
  std::vector<pin_write> take_writes();
  /// Takes the fleet's pins (an object of field -> text, as read from the
  /// Redis hash) in place of this book's; a pin only this book has (from
  /// the file, or seen while Redis was away) is kept and is to be written.
  /// Texts that are not pins are skipped.
  void adopt(const json::value& fleet);
  /// A tool's field in the fleet's hash.
  static std::string field_of(const std::string& service, const std::string& tool);

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
  static std::string state_of(const pin& p);
  static std::string text_of(const pin& p);
  static json::value entry_of(const pin& p);
  static bool read_entry(const json::value& entry, pin& out);
  /// Notes that the pin is about to change (the state it had is what the
  /// fleet's book is expected to hold), once per write.
  void touch(const std::string& service, const std::string& tool, const pin* before);

  bool shared_ = false;
  /// service -> tool -> its pin
  std::map<std::string, std::map<std::string, pin>> pins_;
  /// field -> the state line it had before its first change since the
  /// last take_writes (empty for a new pin)
  std::map<std::string, std::string> touched_;
};

} // namespace bulwark
