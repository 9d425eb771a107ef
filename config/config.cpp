#include "config/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <arpa/inet.h>

#include "config/settings_table.hpp"
#include "messages/crypto.hpp"
#include "messages/json.hpp"
#include "messages/text.hpp"

namespace bulwark {

using json::value;

// -- errors --------------------------------------------------------------------------------

std::string config_error_entry::text() const {
  return path.empty() ? "config: " + message : "config: " + path + ": " + message;
}

namespace {

config_error_entry entry_of(const std::string& what) {
  std::string text = what.rfind("config: ", 0) == 0 ? what.substr(8) : what;
  if (text.rfind("$", 0) == 0)
    if (auto colon = text.find(": "); colon != std::string::npos)
      return {text.substr(0, colon), text.substr(colon + 2)};
  return {"", text};
}

std::string first_text(const std::vector<config_error_entry>& errors) {
  return errors.empty() ? std::string("config: invalid") : errors.front().text();
}

} // namespace

config_error::config_error(const std::string& what) : std::runtime_error(what), errors_{entry_of(what)} {}

config_error::config_error(std::vector<config_error_entry> errors)
    : std::runtime_error(first_text(errors)), errors_(std::move(errors)) {}

// -- the file ------------------------------------------------------------------------------

void apply_json(config& cfg, const std::string& text, const std::string& origin) {
  value root;
  json::parse_error err;
  if (!json::parse(text, root, err))
    throw config_error("config: " + origin + ": " + err.message);
  // Read into a copy: a refused file leaves every setting as it was.
  config next = cfg;
  std::vector<config_error_entry> errors;
  read_settings(next, root, errors);
  if (!errors.empty())
    throw config_error(std::move(errors));
  next.source = origin;
  next.document = std::move(root);
  cfg = std::move(next);
}

std::vector<config_error_entry> check_json(const std::string& text) {
  value root;
  json::parse_error err;
  if (!json::parse(text, root, err))
    return {{"", err.message}};
  config cfg;
  std::vector<config_error_entry> errors;
  read_settings(cfg, root, errors);
  return errors;
}

// -- environment and command line ---------------------------------------------------------

void apply_env(config& cfg) {
  for (auto& s : config_settings()) {
    if (s.env.empty())
      continue;
    const char* v = std::getenv(s.env.c_str());
    if (!v || !*v)
      continue;
    set_from_text(cfg, s, s.env_hashed ? crypto::sha256_hex(v) : std::string(v), "environment " + s.env);
  }
}

bool loopback_address(const std::string& address) {
  if (text::lowered(address) == "localhost")
    return true;
  unsigned char raw[16];
  if (inet_pton(AF_INET, address.c_str(), raw) == 1)
    return raw[0] == 127;
  auto bare = address.size() > 2 && address.front() == '[' && address.back() == ']'
                ? address.substr(1, address.size() - 2)
                : address;
  if (inet_pton(AF_INET6, bare.c_str(), raw) != 1)
    return false;
  static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(raw, raw + 16, v6_loopback) || (std::equal(raw, raw + 12, v4_mapped) && raw[12] == 127);
}

std::string usage() {
  auto column = [](std::string left, const std::string& right) {
    left = "  " + left;
    if (left.size() >= 23)
      return left + "\n" + std::string(23, ' ') + right + "\n";
    return left + std::string(23 - left.size(), ' ') + right + "\n";
  };
  std::string out = "usage: bulwark [options]\n\n"
                    "Serves MCP over Streamable HTTP (default 127.0.0.1:8080/mcp) and/or stdio.\n\n";
  out += column("--config FILE", "JSON config file (see docs/configuration.md and config/examples/)");
  out += column("--check-config FILE", "validate FILE, print every error (FILE: PATH: MESSAGE), exit 2 if any");
  for (auto& s : config_settings()) {
    if (s.flag.empty())
      continue;
    auto help = s.help;
    if (!help.empty() && help.back() == '.')
      help.pop_back();
    if (s.flag_arg.empty())
      out += column(s.flag, s.path + " = " + s.flag_value + ": " + help);
    else if (s.default_value.is_string() && s.default_value.as_string().empty())
      out += column(s.flag + " " + s.flag_arg, s.path + ": " + help);
    else
      out += column(s.flag + " " + s.flag_arg, s.path + ": " + help + " (default " + json::dump(s.default_value) + ")");
  }
  out += column("--print-config", "print the effective configuration and exit");
  out += column("--help", "this text");
  out += "\nEnvironment: BULWARK_CONFIG (the config file)";
  for (auto& s : config_settings())
    if (!s.env.empty())
      out += ", " + s.env + (s.env_hashed ? " (the token; " + s.path + " keeps its SHA-256)" : " (" + s.path + ")");
  out += ".\n\nSIGHUP (or POST /admin/api/config/reload, or the console's reload) reads the\n"
         "configuration again and applies what changed; keys that need a restart are refused.\n";
  out += "\nAPI keys: bulwark keys create|list|revoke ... (see bulwark keys --help).\n";
  return out;
}

void read_state_keys(config& cfg) {
  auto read = [](const std::string& file, const char* path) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      throw config_error(std::string("config: ") + path + ": cannot read " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    auto key = ss.str();
    // A trailing newline (echo, an editor) is not part of the key.
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
      key.pop_back();
    if (key.size() < 32)
      throw config_error(std::string("config: ") + path + ": " + file + " holds " + std::to_string(key.size())
                         + " bytes; a sealing key has at least 32");
    return key;
  };
  auto& r = cfg.runtime;
  if (r.state_key_file.empty() && !r.previous_state_key_file.empty())
    throw config_error("config: $.sessions.previousStateKeyFile: needs sessions.stateKeyFile (the key in force)");
  r.state_key = r.state_key_file.empty() ? std::string() : read(r.state_key_file, "$.sessions.stateKeyFile");
  r.previous_state_key = r.previous_state_key_file.empty()
                           ? std::string()
                           : read(r.previous_state_key_file, "$.sessions.previousStateKeyFile");
}

bool apply_args(config& cfg, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The file comes first so that flags override it.
  std::string file;
  if (const char* env = std::getenv("BULWARK_CONFIG"); env && *env)
    file = env;
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--config") {
      if (i + 1 >= args.size())
        throw config_error("config: --config needs a file name");
      file = args[i + 1];
    }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in)
      throw config_error("config: cannot read " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    apply_json(cfg, ss.str(), file);
  }
  apply_env(cfg);
  bool print = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size())
        throw config_error("config: " + a + " needs a value");
      return args[++i];
    };
    if (a == "--config") {
      ++i;
      continue;
    }
    if (a == "--print-config") {
      print = true;
      continue;
    }
    if (a == "--print-config-reference") {
      auto kind = next();
      if (kind != "markdown" && kind != "json")
        throw config_error("config: --print-config-reference: must be markdown or json");
      std::cout << (kind == "markdown" ? settings_reference_markdown() : settings_reference_json());
      return false;
    }
    if (a == "--help" || a == "-h") {
      std::cout << usage();
      return false;
    }
    auto& keys = config_settings();
    auto s = std::find_if(keys.begin(), keys.end(), [&](const setting<config>& k) { return k.flag == a; });
    if (s == keys.end())
      throw config_error("config: unknown option " + a + " (see --help)");
    set_from_text(cfg, *s, s->flag_arg.empty() ? s->flag_value : next(), a);
  }
  if (!cfg.http_enabled && !cfg.stdio)
    throw config_error("config: nothing to serve: enable HTTP or --stdio");
  if (cfg.auth.mode == auth_mode::keys && cfg.auth.key_file.empty())
    throw config_error("config: $.auth.keyFile: is required when auth.mode is \"keys\" (or pass --key-file)");
  if (cfg.auth.mode == auth_mode::oauth)
    if (auto why = check_oauth_settings(cfg.auth.oauth); !why.empty())
      throw config_error("config: " + why);
  if (cfg.http_enabled && cfg.auth.mode == auth_mode::none && !cfg.auth.allow_unauthenticated
      && !loopback_address(cfg.http.address))
    throw config_error(
      "config: $.auth.mode: \"none\" serves anyone who can reach " + cfg.http.address
      + ", which is not a loopback address; set auth.mode to \"keys\" (with auth.keyFile) or \"oauth\", "
        "or auth.allowUnauthenticated to true (--allow-unauthenticated) to serve it without "
        "authentication");
  read_state_keys(cfg);
  if (print) {
    std::cout << describe(cfg) << "\n";
    return false;
  }
  return true;
}

json::value effective_settings(const config& cfg) {
  auto v = value::make_object({{"source", cfg.source}});
  auto values = settings_values(cfg);
  for (auto& [k, x] : values.as_object())
    v.set(k, x);
  return v;
}

std::string describe(const config& cfg) {
  return json::dump(effective_settings(cfg));
}

} // namespace bulwark
