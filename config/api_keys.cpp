#include "config/api_keys.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"
#include "messages/json.hpp"

namespace bulwark {

using json::value;

api_key* key_file::find_name(std::string_view name) {
  for (auto& k : keys)
    if (k.name == name)
      return &k;
  return nullptr;
}

std::string check_key_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return "a key name must be 1 to 64 characters";
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return "a key name may hold only letters, digits, '_', '-' and '.'";
  return {};
}

namespace {

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

/// Strict reading of one JSON object: each member is taken once, and
/// members nobody took are refused at the end.
class members {
public:
  members(const value& v, std::string path, const std::string& origin)
      : v_(v), path_(std::move(path)), origin_(origin) {
    if (!v_.is_object())
      fail(path_, "must be an object");
  }

  [[noreturn]] void fail(const std::string& path, const std::string& why) const {
    throw config_error("keys: " + origin_ + ": " + path + ": " + why);
  }

  const value* take(const std::string& key) {
    taken_.insert(key);
    return v_.find(key);
  }

  std::string path(const std::string& key) const { return path_ + "." + key; }

  /// A string member; `required` ones must be present and non-empty.
  std::string text(const std::string& key, bool required) {
    auto* x = take(key);
    if (!x) {
      if (required)
        fail(path(key), "is required");
      return {};
    }
    if (!x->is_string() || (required && x->as_string().empty()))
      fail(path(key), required ? "must be a non-empty string" : "must be a string");
    return x->as_string();
  }

  std::vector<std::string> patterns(const std::string& key) {
    std::vector<std::string> out;
    auto* x = take(key);
    if (!x)
      return out;
    if (!x->is_array())
      fail(path(key), "must be an array of server:tool patterns");
    for (auto& p : x->as_array()) {
      if (!p.is_string() || p.as_string().find(':') == std::string::npos)
        fail(path(key), "each pattern must be a string of the form server:tool (wildcards allowed)");
      out.push_back(p.as_string());
    }
    return out;
  }

  void done() const {
    for (auto& [k, item] : v_.as_object())
      if (!taken_.count(k))
        fail(path(k), "unknown key");
  }

private:
  const value& v_;
  std::string path_;
  const std::string& origin_;
  std::set<std::string> taken_;
};

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

value to_json(const api_key& k) {
  auto v = value::make_object({{"name", k.name}, {"sha256", k.sha256}, {"tier", k.tier}});
  if (k.prio)
    v.set("priority", to_string(*k.prio));
  if (k.policy) {
    value allow(json::array{}), deny(json::array{});
    for (auto& p : k.policy->allow)
      allow.push_back(p);
    for (auto& p : k.policy->deny)
      deny.push_back(p);
    v.set("policy", value::make_object({{"allow", std::move(allow)}, {"deny", std::move(deny)}}));
  }
  v.set("created", k.created);
  if (k.revoked == "true")
    v.set("revoked", true); // as a hand edit wrote it
  else if (!k.revoked.empty())
    v.set("revoked", k.revoked);
  return v;
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

} // namespace

key_file parse_key_file(std::string_view text, const std::string& origin, const std::set<std::string>& tiers) {
  value root;
  json::parse_error err;
  if (!json::parse(text, root, err))
    throw config_error("keys: " + origin + ": " + err.message);
  members top(root, "$", origin);
  key_file out;
  if (auto* list = top.take("keys")) {
    if (!list->is_array())
      top.fail("$.keys", "must be an array of keys");
    std::set<std::string> names, hashes;
    for (std::size_t i = 0; i < list->as_array().size(); ++i) {
      auto path = "$.keys[" + std::to_string(i) + "]";
      members m(list->as_array()[i], path, origin);
      api_key k;
      k.name = m.text("name", true);
      if (auto why = check_key_name(k.name); !why.empty())
        m.fail(m.path("name"), why);
      if (!names.insert(k.name).second)
        m.fail(m.path("name"), "another key is named '" + k.name + "'");
      k.sha256 = m.text("sha256", true);
      if (!is_sha256_hex(k.sha256))
        m.fail(m.path("sha256"), "must be the lower-case hex SHA-256 of the key (64 characters), never the key itself");
      if (!hashes.insert(k.sha256).second)
        m.fail(m.path("sha256"), "another key has the same hash");
      k.tier = m.text("tier", true);
      if (!tiers.empty() && !tiers.count(k.tier))
        m.fail(m.path("tier"), "no tier named '" + k.tier + "' in rateLimits.tiers (" + join(tiers) + ")");
      auto prio = m.text("priority", false);
      if (!prio.empty()) {
        k.prio = parse_priority(prio);
        if (!k.prio)
          m.fail(m.path("priority"), "must be one of critical, high, normal, low");
      }
      if (auto* p = m.take("policy")) {
        members pm(*p, m.path("policy"), origin);
        access_policy policy;
        policy.allow = pm.patterns("allow");
        policy.deny = pm.patterns("deny");
        pm.done();
        k.policy = std::make_shared<const access_policy>(std::move(policy));
      }
      k.created = m.text("created", false);
      if (auto* r = m.take("revoked")) {
        // A timestamp as `keys revoke` writes it; `true` for a hand edit.
        if (r->is_string() && !r->as_string().empty())
          k.revoked = r->as_string();
        else if (r->is_bool())
          k.revoked = r->as_bool() ? "true" : "";
        else
          m.fail(m.path("revoked"), "must be the time of revocation (a string) or true/false");
      }
      m.done();
      out.keys.push_back(std::move(k));
    }
  }
  top.done();
  return out;
}

std::string dump_key_file(const key_file& file) {
  std::string out = "{\n  \"keys\": [";
  for (std::size_t i = 0; i < file.keys.size(); ++i) {
    out += i == 0 ? "\n    " : ",\n    ";
    json::write(out, to_json(file.keys[i]));
  }
  out += file.keys.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

key_file read_key_file(const std::string& path, const std::set<std::string>& tiers) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw config_error("keys: cannot read " + path + ": " + std::generic_category().message(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_key_file(ss.str(), path, tiers);
}

void write_key_file(const std::string& path, const key_file& file) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  auto tmp = path + ".tmp-" + crypto::random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw_errno("cannot create " + tmp);
  auto text = dump_key_file(file);
  auto cleanup = [&] {
    ::close(fd);
    ::unlink(tmp.c_str());
  };
  // The umask may have taken bits away, never added them; make it exact.
  if (::fchmod(fd, 0600) != 0) {
    auto e = errno;
    cleanup();
    errno = e;
    throw_errno("cannot set the mode of " + tmp);
  }
  std::size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto e = errno;
      cleanup();
      errno = e;
      throw_errno("cannot write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto e = errno;
    cleanup();
    errno = e;
    throw_errno("cannot sync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    throw_errno("cannot replace " + path);
  }
  // The rename itself must survive a crash too.
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string generate_api_key() {
  return std::string(api_key_prefix) + crypto::random_hex(32);
}

// -- file_watch ----------------------------------------------------------------------

file_watch::file_watch(std::string path, std::chrono::milliseconds recheck)
    : path_(std::move(path)), recheck_(recheck) {
  stamp_ = stamp_of(path_);
  next_check_ = (std::chrono::steady_clock::now() + recheck_).time_since_epoch().count();
}

bool file_watch::due() noexcept {
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto next = next_check_.load(std::memory_order_relaxed);
  return now >= next
         && next_check_.compare_exchange_strong(next, now + std::chrono::nanoseconds(recheck_).count(),
                                                std::memory_order_relaxed);
}

bool file_watch::changed() {
  std::lock_guard<std::mutex> guard(mtx_);
  auto stamp = stamp_of(path_);
  if (stamp == stamp_)
    return false;
  stamp_ = stamp;
  return true;
}

file_watch::file_stamp file_watch::stamp_of(const std::string& path) {
  file_stamp s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return s;
  s.exists = true;
  s.device = static_cast<unsigned long long>(st.st_dev);
  s.inode = static_cast<unsigned long long>(st.st_ino);
  s.size = static_cast<unsigned long long>(st.st_size);
  s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  return s;
}

// -- key_store -----------------------------------------------------------------------

key_store::key_store(std::string path, std::set<std::string> tiers, std::chrono::milliseconds recheck)
    : path_(std::move(path)), tiers_(std::move(tiers)), watch_(path_, recheck) {
  table_ = index(read_key_file(path_, tiers_));
}

std::shared_ptr<const key_store::table> key_store::index(const key_file& file) {
  auto t = std::make_shared<table>();
  for (auto& k : file.keys)
    if (k.live())
      t->emplace(k.sha256, std::make_shared<const api_key>(k));
  return t;
}

std::shared_ptr<const key_store::table> key_store::current() const {
  std::lock_guard<std::mutex> guard(table_mtx_);
  return table_;
}

bool key_store::reload() {
  if (!watch_.changed())
    return false;
  // Each version of the file is judged once: a bad one is logged once and
  // the keys stay as they were until the file changes again.
  try {
    auto file = read_key_file(path_, tiers_);
    auto t = index(file);
    auto live = t->size();
    {
      std::lock_guard<std::mutex> tg(table_mtx_);
      table_ = std::move(t);
    }
    log::info("key file reloaded", value::make_object({{"path", path_},
                                                       {"keys", static_cast<unsigned long long>(file.keys.size())},
                                                       {"live", static_cast<unsigned long long>(live)}}));
    return true;
  } catch (const config_error& e) {
    log::error("key file not reloaded; the previous keys stay in force",
               value::make_object({{"path", path_}, {"error", e.what()}}));
    return false;
  }
}

std::shared_ptr<const api_key> key_store::authenticate(std::string_view key) {
  if (watch_.due())
    reload();
  return find(crypto::sha256_hex(key));
}

std::shared_ptr<const api_key> key_store::find(std::string_view sha256) const {
  // The table is indexed by hash: what a lookup's timing could tell is how a
  // stored hash compares with the hash of the caller's guess, which says
  // nothing about any key. The final comparison runs in constant time all
  // the same, so that no shortcut can creep in through the index.
  auto t = current();
  auto i = t->find(std::string(sha256));
  if (i == t->end() || !crypto::constant_time_equal(i->second->sha256, sha256))
    return nullptr;
  return i->second;
}

std::size_t key_store::size() const {
  return current()->size();
}

} // namespace bulwark
