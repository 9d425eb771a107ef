// API keys: the key file and the live table a server authenticates against.
//
// A key is shown once, when `bulwark keys create` makes it; the file holds
// only its SHA-256, with a name, a rate-limit tier, an optional priority and
// gateway policy, when it was created and when it was revoked. The server
// reads the file at start-up and again whenever it changes, so that a
// revocation takes effect without a restart.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/service.hpp"
#include "messages/settings.hpp"

namespace bulwark {

/// Keys made by Bulwark start with this, so that they are recognizable in
/// a leaked file or a log line.
inline constexpr std::string_view api_key_prefix = "bwk_";

/// One entry of the key file.
struct api_key {
  std::string name; ///< Unique within the file; how operators name the key.
  std::string sha256; ///< Lower-case hex SHA-256 of the key.
  std::string tier; ///< A tier of `rateLimits.tiers`.
  std::optional<priority> prio; ///< Default queue priority of its calls.
  /// Gateway policy for its calls (allow/deny over `server:tool`); null:
  /// the gateway's own.
  std::shared_ptr<const access_policy> policy;
  std::string created; ///< RFC 3339, UTC.
  /// When it was revoked (RFC 3339, UTC; "true" when a hand edit did not
  /// say); empty while live.
  std::string revoked;

  bool live() const noexcept { return revoked.empty(); }
};

/// The key file's contents, in file order.
struct key_file {
  std::vector<api_key> keys;

  api_key* find_name(std::string_view name);
};

/// Parses key-file text. Unknown members and bad values throw config_error
/// naming `origin` and the member's path (`$.keys[1].tier`). A non-empty
/// `tiers` lists the tier names a key may have.
key_file parse_key_file(std::string_view text, const std::string& origin, const std::set<std::string>& tiers = {});

/// The file's text: one key per line, so that changes read well in a diff.
std::string dump_key_file(const key_file& file);

/// Reads and parses the file at `path` (config_error when it cannot).
key_file read_key_file(const std::string& path, const std::set<std::string>& tiers = {});

/// Replaces the file at `path` at once: writes a temporary file (mode 0600)
/// beside it, syncs it and renames it over the old one, so a reader sees the
/// old file or the new one, never a part. Throws std::system_error.
void write_key_file(const std::string& path, const key_file& file);

/// A new key: the prefix and 32 bytes from the kernel's CSPRNG, in hex.
std::string generate_api_key();

/// Checks a key name: 1 to 64 letters, digits, '_', '-' or '.'. Returns
/// why it is bad, or an empty string.
std::string check_key_name(std::string_view name);

/// Tells when a file a server re-reads (the key file, a JWK Set) has
/// changed: a rename makes a new inode, an editor writing in place changes
/// size or mtime. Thread-safe.
class file_watch {
public:
  /// Remembers the file's current version; `recheck` bounds how often
  /// `due` says yes.
  file_watch(std::string path, std::chrono::milliseconds recheck);

  /// True for one caller once per interval, so that a busy server looks at
  /// the file at most that often; the others go on at once.
  bool due() noexcept;

  /// True when the file differs from the version last seen, which it then
  /// remembers: each version is reported once.
  bool changed();

  const std::string& path() const noexcept { return path_; }

private:
  struct file_stamp {
    unsigned long long device = 0, inode = 0, size = 0;
    long long mtime_ns = 0;
    bool exists = false;
    bool operator==(const file_stamp& o) const noexcept {
      return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns && exists == o.exists;
    }
  };
  static file_stamp stamp_of(const std::string& path);

  std::string path_;
  std::chrono::milliseconds recheck_;
  /// steady_clock nanoseconds of the next look at the file.
  std::atomic<long long> next_check_{0};
  std::mutex mtx_;
  file_stamp stamp_; ///< Of the version last seen (guarded by mtx_).
};

/// The live keys of a key file, as a server uses them. Re-reads the file
/// when it changed (looked at no more than once per `recheck`, by the
/// request that finds the interval over); a file that no longer parses keeps
/// the previous keys and is logged once per change. Thread-safe.
class key_store {
public:
  /// Reads `path`; a server refuses to start on the config_error this
  /// throws. `tiers` as for parse_key_file.
  key_store(std::string path, std::set<std::string> tiers, std::chrono::milliseconds recheck = std::chrono::seconds(1));

  /// The live entry whose key is `key`, or null (unknown or revoked).
  std::shared_ptr<const api_key> authenticate(std::string_view key);

  /// The live entry whose hash is `sha256`, or null. Never reads the file
  /// (actors ask this for tiers and policies).
  std::shared_ptr<const api_key> find(std::string_view sha256) const;

  /// Re-reads the file if it changed since it was last read. Returns true
  /// when the keys were replaced.
  bool reload();

  /// Live keys.
  std::size_t size() const;

  const std::string& path() const noexcept { return path_; }

private:
  using table = std::unordered_map<std::string, std::shared_ptr<const api_key>>;

  static std::shared_ptr<const table> index(const key_file& file);
  std::shared_ptr<const table> current() const;

  std::string path_;
  std::set<std::string> tiers_;
  file_watch watch_;
  mutable std::mutex table_mtx_;
  std::shared_ptr<const table> table_;
};

} // namespace bulwark
