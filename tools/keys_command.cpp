#include "tools/keys_command.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/api_keys.hpp"
#include "config/audit.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"
#include "messages/json.hpp"

namespace bulwark {

namespace {

const char* keys_usage = R"(usage: bulwark keys COMMAND [options]

  create --name NAME --tier TIER [--priority P] [--allow PATTERN]... [--deny PATTERN]...
         makes a key, stores its SHA-256 and prints the key once on stdout
  list [--json]
         names, tiers, priorities, creation and revocation times, hash prefixes
  revoke --name NAME
         revokes a key; running servers stop accepting it within a second

  --key-file FILE   the key file (default: auth.keyFile of the config)
  --config FILE     the server's config (for auth.keyFile and rateLimits.tiers;
                    also BULWARK_CONFIG)

Exit status: 0 done, 1 the operation failed, 2 a usage or configuration mistake.
)";

/// A usage or configuration mistake (exit status 2).
struct usage_error {
  std::string message;
};

/// The operation failed (exit status 1).
struct failure {
  std::string message;
};

struct options {
  std::string command;
  std::string name, tier, priority, key_file, config_file;
  std::vector<std::string> allow, deny;
  bool json = false;
};

options parse_options(int argc, char** argv) {
  options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    throw usage_error{"keys: a command is required: create, list or revoke (see bulwark keys --help)"};
  o.command = args[0];
  if (const char* env = std::getenv("BULWARK_CONFIG"); env && *env)
    o.config_file = env;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const auto& a = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size() || args[i + 1].empty())
        throw usage_error{"keys: " + a + " needs a value"};
      return args[++i];
    };
    if (a == "--name")
      o.name = next();
    else if (a == "--tier")
      o.tier = next();
    else if (a == "--priority")
      o.priority = next();
    else if (a == "--allow")
      o.allow.push_back(next());
    else if (a == "--deny")
      o.deny.push_back(next());
    else if (a == "--key-file")
      o.key_file = next();
    else if (a == "--config")
      o.config_file = next();
    else if (a == "--json")
      o.json = true;
    else
      throw usage_error{"keys: unknown option " + a + " (see bulwark keys --help)"};
  }
  return o;
}

/// The server's settings as far as keys need them: the key file's path and
/// the tier names.
config load_config(const options& o) {
  config cfg;
  if (o.config_file.empty())
    return cfg;
  std::ifstream in(o.config_file);
  if (!in)
    throw usage_error{"keys: cannot read the config " + o.config_file};
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    apply_json(cfg, ss.str(), o.config_file);
  } catch (const config_error& e) {
    throw usage_error{e.what()};
  }
  return cfg;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// Holds an exclusive lock on the key file's directory, so that two
/// commands changing the file at once do not lose each other's change (the
/// file itself is replaced by a rename, so it cannot carry the lock).
class directory_lock {
public:
  explicit directory_lock(const std::string& file) {
    auto slash = file.rfind('/');
    auto dir = slash == std::string::npos ? std::string(".") : (slash == 0 ? "/" : file.substr(0, slash));
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0)
      throw failure{"keys: cannot open the directory " + dir + ": " + std::generic_category().message(errno)};
    if (::flock(fd_, LOCK_EX) != 0)
      throw failure{"keys: cannot lock the directory " + dir + ": " + std::generic_category().message(errno)};
  }
  ~directory_lock() {
    ::close(fd_); // releases the lock
  }
  directory_lock(const directory_lock&) = delete;
  directory_lock& operator=(const directory_lock&) = delete;

private:
  int fd_ = -1;
};

key_file read_existing(const std::string& path) {
  try {
    return read_key_file(path);
  } catch (const config_error& e) {
    throw failure{e.what()};
  }
}

void write(const std::string& path, const key_file& file) {
  try {
    write_key_file(path, file);
  } catch (const std::system_error& e) {
    throw failure{std::string("keys: ") + e.what()};
  }
}

std::string names_of(const config& cfg) {
  std::string out;
  for (auto& [name, windows] : cfg.runtime.ops.limits.tiers)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

/// Who runs the command, for the audit log: "cli:<user name>" (or uid).
std::string operator_identity() {
  auto uid = ::getuid();
  if (auto* pw = ::getpwuid(uid); pw && pw->pw_name)
    return std::string("cli:") + pw->pw_name;
  return "cli:uid " + std::to_string(uid);
}

void audit_key(const char* event, const api_key& k, const std::string& path) {
  audit::record(
    {event,
     "ok",
     operator_identity(),
     {},
     k.name,
     {},
     json::value::make_object({{"tier", k.tier}, {"sha256Prefix", k.sha256.substr(0, 8)}, {"keyFile", path}})});
}

int create(const options& o, const config& cfg, const std::string& path) {
  if (o.name.empty())
    throw usage_error{"keys: create needs --name NAME"};
  if (auto why = check_key_name(o.name); !why.empty())
    throw usage_error{"keys: --name " + o.name + ": " + why};
  if (o.tier.empty())
    throw usage_error{"keys: create needs --tier TIER (one of " + names_of(cfg) + ")"};
  if (!cfg.runtime.ops.limits.tiers.count(o.tier))
    throw usage_error{"keys: --tier " + o.tier + ": no such tier in rateLimits.tiers (" + names_of(cfg) + ")"};
  api_key entry;
  entry.name = o.name;
  entry.tier = o.tier;
  if (!o.priority.empty()) {
    entry.prio = parse_priority(o.priority);
    if (!entry.prio)
      throw usage_error{"keys: --priority " + o.priority + ": must be one of critical, high, normal, low"};
  }
  if (!o.allow.empty() || !o.deny.empty()) {
    for (auto* list : {&o.allow, &o.deny})
      for (auto& p : *list)
        if (p.find(':') == std::string::npos)
          throw usage_error{"keys: pattern '" + p + "' must have the form server:tool (wildcards allowed)"};
    entry.policy = std::make_shared<const access_policy>(access_policy{o.allow, o.deny});
  }
  directory_lock lock(path);
  key_file file = exists(path) ? read_existing(path) : key_file{};
  if (file.find_name(o.name))
    throw failure{"keys: a key named '" + o.name + "' already exists in " + path + "; revoke it or pick another name"};
  auto key = generate_api_key();
  entry.sha256 = crypto::sha256_hex(key);
  entry.created = log::utc(std::chrono::system_clock::now(), log::time_digits::seconds);
  file.keys.push_back(std::move(entry));
  write(path, file);
  audit_key("key.created", file.keys.back(), path);
  std::cout << key << std::endl;
  std::cerr << "keys: created '" << o.name << "' (tier " << o.tier << ") in " << path
            << "; the key is shown only this once and is not stored, keep it now" << std::endl;
  return 0;
}

int list(const options& o, const std::string& path) {
  auto file = read_existing(path);
  if (o.json) {
    json::value out(json::array{});
    for (auto& k : file.keys) {
      auto v = json::value::make_object({{"name", k.name},
                                         {"tier", k.tier},
                                         {"priority", k.prio ? json::value(to_string(*k.prio)) : json::value()},
                                         {"created", k.created},
                                         {"revoked", k.revoked.empty() ? json::value() : json::value(k.revoked)},
                                         {"policy", static_cast<bool>(k.policy)},
                                         {"sha256Prefix", k.sha256.substr(0, 8)}});
      out.push_back(std::move(v));
    }
    std::cout << json::dump(out) << std::endl;
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "TIER", "PRIORITY", "CREATED", "REVOKED", "POLICY", "SHA256"}};
  for (auto& k : file.keys)
    rows.push_back({k.name, k.tier, k.prio ? to_string(*k.prio) : "-", k.created.empty() ? "-" : k.created,
                    k.revoked.empty() ? "-" : k.revoked, k.policy ? "yes" : "-", k.sha256.substr(0, 8) + "..."});
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  for (auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i)
      line += i + 1 < r.size() ? r[i] + std::string(width[i] - r[i].size() + 2, ' ') : r[i];
    std::cout << line << "\n";
  }
  std::cout.flush();
  return 0;
}

int revoke(const options& o, const std::string& path) {
  if (o.name.empty())
    throw usage_error{"keys: revoke needs --name NAME"};
  directory_lock lock(path);
  auto file = read_existing(path);
  auto* k = file.find_name(o.name);
  if (!k)
    throw failure{"keys: no key named '" + o.name + "' in " + path};
  if (!k->live()) {
    std::cout << "keys: '" << o.name << "' was already revoked (" << k->revoked << ")" << std::endl;
    return 0;
  }
  k->revoked = log::utc(std::chrono::system_clock::now(), log::time_digits::seconds);
  write(path, file);
  audit_key("key.revoked", *k, path);
  std::cout << "keys: revoked '" << o.name << "'; running servers refuse it from their next look at " << path
            << " (within a second)" << std::endl;
  return 0;
}

} // namespace

int run_keys_command(int argc, char** argv) {
  try {
    if (argc >= 2
        && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help")) {
      std::cout << keys_usage;
      return 0;
    }
    auto o = parse_options(argc, argv);
    if (o.command != "create" && o.command != "list" && o.command != "revoke")
      throw usage_error{"keys: unknown command " + o.command + ": use create, list or revoke"};
    auto cfg = load_config(o);
    if (!cfg.audit.file.empty() && o.command != "list")
      audit::open(cfg.audit);
    auto path = !o.key_file.empty() ? o.key_file : cfg.auth.key_file;
    if (path.empty())
      throw usage_error{"keys: no key file: pass --key-file FILE or set auth.keyFile in the config (--config FILE)"};
    if (o.command == "create")
      return create(o, cfg, path);
    if (o.command == "list")
      return list(o, path);
    return revoke(o, path);
  } catch (const usage_error& e) {
    std::cerr << e.message << std::endl;
    return 2;
  } catch (const failure& e) {
    std::cerr << e.message << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "keys: " << e.what() << std::endl;
    return 1;
  }
}

} // namespace bulwark
