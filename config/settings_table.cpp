#include "config/settings_table.hpp"

#include "config/secrets.hpp"
#include "messages/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <type_traits>

namespace bulwark {

using json::value;
using errors_t = std::vector<config_error_entry>;

// -- setting_info -------------------------------------------------------------------------

setting_info& setting_info::with_env(std::string name) {
  env = std::move(name);
  return *this;
}

setting_info& setting_info::with_token_env(std::string name) {
  env_hashed = true;
  return with_env(std::move(name));
}

setting_info& setting_info::with_flag(std::string name, std::string arg) {
  flag = std::move(name);
  flag_arg = std::move(arg);
  return *this;
}

setting_info& setting_info::with_switch(std::string name, std::string sets) {
  flag = std::move(name);
  flag_value = std::move(sets);
  return *this;
}

setting_info& setting_info::is_secret() {
  secret = true;
  return *this;
}

setting_info& setting_info::not_in_example() {
  example = false;
  return *this;
}

namespace {

std::string joined(const std::vector<std::string>& xs, const std::string& sep) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : sep) + x;
  return out;
}

bool whole_numbers(setting_type t) {
  return t == setting_type::integer || t == setting_type::seconds || t == setting_type::milliseconds;
}

std::string number_text(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

std::string bound_text(setting_type t, double x) {
  return whole_numbers(t) ? std::to_string(static_cast<long long>(x)) : number_text(x);
}

} // namespace

std::string setting_info::type_name() const {
  switch (type) {
    case setting_type::boolean:
      return "boolean";
    case setting_type::integer:
      return "integer";
    case setting_type::seconds:
      return "seconds";
    case setting_type::milliseconds:
      return "milliseconds";
    case setting_type::number:
      return "number";
    case setting_type::string:
      return "string";
    case setting_type::string_list:
      return "list of strings";
    case setting_type::string_map:
      return "object of strings";
    case setting_type::enumeration:
      return "one of " + joined(values, ", ");
    case setting_type::section:
      return "object";
  }
  return "?";
}

std::string setting_info::bounds() const {
  if (!whole_numbers(type) && type != setting_type::number)
    return {};
  return bound_text(type, lo) + ".." + bound_text(type, hi);
}

std::string setting_info::range() const {
  return "between " + bound_text(type, lo) + " and " + bound_text(type, hi);
}

namespace {

// -- checks shared by several keys ---------------------------------------------------------

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw config_error(errors_t{{path, why}});
}

bool is_https(const std::string& url) {
  return url.rfind("https://", 0) == 0;
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// The URL of an HTTP peer (a service, the alert webhook).
void check_http_url(const std::string& path, const std::string& url) {
  if (!is_https(url) && url.rfind("http://", 0) != 0)
    bad(path, "must be an http:// or https:// URL");
  auto host = url.find("://") + 3;
  auto at = url.find('@', host);
  if (at != std::string::npos && at < url.find_first_of("/?#", host))
    bad(path, "user information (user:password@) is not supported: send credentials in \"headers\"");
}

/// Files to trust and to present for an https:// peer (`path` is its `tls`).
void check_tls(const std::string& path, const service_tls& tls) {
  if (tls.cert_file.empty() != tls.key_file.empty())
    bad(path, "certFile and keyFile go together");
  // Readable now, so that a typo fails start-up rather than every call.
  for (auto [key, file] :
       {std::pair{"caFile", &tls.ca_file}, std::pair{"certFile", &tls.cert_file}, std::pair{"keyFile", &tls.key_file}})
    if (!file->empty() && !std::ifstream(*file))
      bad(path + "." + key, "cannot read '" + *file + "'");
}

void check_separator(const std::string& path, const std::string& sep) {
  if (sep.empty() || sep.size() > 8)
    bad(path, "must be 1 to 8 characters");
  for (char c : sep)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/'))
      bad(path, "may hold only letters, digits, '_', '-', '.' and '/'");
}

/// A Redis URL fit for logs: its password replaced. Whatever its scheme (a
/// mistyped one included), everything before the last '@' after it is
/// taken for credentials.
std::string without_password(const std::string& url) {
  auto at = url.rfind('@');
  if (at == std::string::npos)
    return url;
  auto scheme = url.find("://");
  auto from = scheme == std::string::npos || scheme > at ? 0 : scheme + 3;
  return url.substr(0, from) + "***" + url.substr(at);
}

/// An empty URL is "no Redis"; anything else must be a redis:// URL. The
/// error shows the URL without its password.
void check_redis_url(const std::string& path, const std::string& written) {
  if (written.empty())
    return;
  if (auto why = secrets::check(written); !why.empty())
    bad(path, why);
  std::string error;
  auto url = *secrets::resolve(written, error);
  parse_redis_url(url, error);
  if (!error.empty())
    bad(path, "\"" + without_password(url) + "\": " + error + " (expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
}

/// Header values that may be secret references: each must be usable now.
void check_secret_values(const value& v, const std::string& path, errors_t& errors) {
  for (auto& [name, x] : v.as_object())
    if (x.is_string())
      if (auto why = secrets::check(x.as_string()); !why.empty())
        errors.push_back({path + "." + name, why});
}

priority priority_of(const std::string& path, const std::string& s) {
  auto p = parse_priority(s);
  if (!p)
    bad(path, "must be one of critical, high, normal, low");
  return *p;
}

/// Runs a hand-written reader; its error joins the others.
template <class F>
void collect(errors_t& errors, F&& read) {
  try {
    read();
  } catch (const config_error& e) {
    errors.insert(errors.end(), e.errors().begin(), e.errors().end());
  }
}

value strings_value(const std::vector<std::string>& xs) {
  value out(json::array{});
  for (auto& x : xs)
    out.push_back(x);
  return out;
}

std::vector<std::string> strings_of(const value& v) {
  std::vector<std::string> out;
  for (auto& x : v.as_array())
    out.push_back(x.as_string());
  return out;
}

/// Sets `rel` (dotted) inside the object `root`, making objects on the way.
void put(value& root, const std::string& rel, value v) {
  auto dot = rel.find('.');
  if (dot == std::string::npos) {
    root.set(rel, std::move(v));
    return;
  }
  auto head = rel.substr(0, dot);
  auto* child = root.find(head);
  if (!child || !child->is_object())
    child = &root.set(head, value(json::object{}));
  put(*child, rel.substr(dot + 1), std::move(v));
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0 && s[prefix.size()] == '.';
}

// -- building a table ----------------------------------------------------------------------

/// The keys of `T` in reading order and the rules over several of them.
template <class T>
struct key_table {
  std::vector<setting<T>> keys;
  std::vector<setting_rule<T>> rules;
};

/// Adds keys of `T` in reading order. `live` applies to the keys added
/// after it is set. Fields are given as `[](auto& c) -> auto& { ... }`.
template <class T>
struct table_builder {
  std::vector<setting<T>> keys;
  std::vector<setting_rule<T>> rules;
  bool live = false;

  setting<T>& add(std::string path, setting_type type, std::string help, std::function<value(const T&)> get = {},
                  std::function<void(T&, const value&)> set = {}) {
    setting<T> s;
    s.path = std::move(path);
    s.type = type;
    s.help = std::move(help);
    s.live = live;
    s.get = std::move(get);
    s.set = std::move(set);
    keys.push_back(std::move(s));
    return keys.back();
  }

  /// A key with bounds.
  setting<T>& bounded(std::string path, setting_type type, double lo, double hi, std::string help,
                      std::function<value(const T&)> get, std::function<void(T&, const value&)> set) {
    auto& s = add(std::move(path), type, std::move(help), std::move(get), std::move(set));
    s.lo = lo;
    s.hi = hi;
    return s;
  }

  template <class F>
  setting_info& boolean(std::string path, F field, std::string help) {
    return add(
      std::move(path), setting_type::boolean, std::move(help),
      [field](const T& c) { return value(static_cast<bool>(field(c))); },
      [field](T& c, const value& v) { field(c) = v.as_bool(); });
  }

  template <class F>
  setting<T>& integer(std::string path, F field, double lo, double hi, std::string help) {
    return bounded(
      std::move(path), setting_type::integer, lo, hi, std::move(help),
      [field](const T& c) { return value(static_cast<long long>(field(c))); },
      [field](T& c, const value& v) { field(c) = static_cast<std::decay_t<decltype(field(c))>>(v.as_int()); });
  }

  /// A whole count of `Duration` (seconds, milliseconds).
  template <class Duration, class F>
  setting_info& duration(std::string path, F field, double lo, double hi, std::string help) {
    return bounded(
      std::move(path),
      std::is_same_v<Duration, std::chrono::seconds> ? setting_type::seconds : setting_type::milliseconds, lo, hi,
      std::move(help), [field](const T& c) { return value(static_cast<long long>(field(c).count())); },
      [field](T& c, const value& v) { field(c) = Duration(v.as_int()); });
  }

  template <class F>
  setting_info& seconds(std::string path, F field, double lo, double hi, std::string help) {
    return duration<std::chrono::seconds>(std::move(path), field, lo, hi, std::move(help));
  }

  template <class F>
  setting_info& millis(std::string path, F field, double lo, double hi, std::string help) {
    return duration<std::chrono::milliseconds>(std::move(path), field, lo, hi, std::move(help));
  }

  template <class F>
  setting_info& number(std::string path, F field, double lo, double hi, std::string help) {
    return bounded(
      std::move(path), setting_type::number, lo, hi, std::move(help),
      [field](const T& c) { return value(static_cast<double>(field(c))); },
      [field](T& c, const value& v) { field(c) = v.as_double(); });
  }

  template <class F>
  setting<T>& string(std::string path, F field, std::string help) {
    return add(
      std::move(path), setting_type::string, std::move(help), [field](const T& c) { return value(field(c)); },
      [field](T& c, const value& v) { field(c) = v.as_string(); });
  }

  template <class F>
  setting<T>& strings(std::string path, F field, std::string help) {
    return add(
      std::move(path), setting_type::string_list, std::move(help),
      [field](const T& c) { return strings_value(field(c)); },
      [field](T& c, const value& v) { field(c) = strings_of(v); });
  }

  /// An object of strings kept in a map or as pairs in document order.
  template <class F>
  setting<T>& pairs(std::string path, F field, std::string help) {
    return add(
      std::move(path), setting_type::string_map, std::move(help),
      [field](const T& c) {
        value out(json::object{});
        for (auto& [k, v] : field(c))
          out.set(k, v);
        return out;
      },
      [field](T& c, const value& v) {
        auto& out = field(c);
        out.clear();
        for (auto& [k, x] : v.as_object())
          out.insert(out.end(), {k, x.as_string()});
      });
  }

  /// One of `words`; `get` and `set` convert to and from the field.
  setting<T>& choice(std::string path, std::vector<std::string> words, std::string refusal,
                     std::function<std::string(const T&)> get, std::function<void(T&, const std::string&)> set,
                     std::string help) {
    auto& s = add(std::move(path), setting_type::enumeration, std::move(help));
    s.values = std::move(words);
    s.refusal = refusal.empty() ? "must be one of " + joined(s.values, ", ") : std::move(refusal);
    if (get)
      s.get = [get](const T& c) { return value(get(c)); };
    s.set = [set](T& c, const value& v) { set(c, v.as_string()); };
    return s;
  }

  /// A section read by hand; `get` shows it.
  setting<T>& section(std::string path, std::function<value(const T&)> get,
                      std::function<void(T&, const value&, const std::string&, errors_t&)> read, std::string help) {
    auto& s = add(std::move(path), setting_type::section, std::move(help));
    s.get = std::move(get);
    s.read = std::move(read);
    return s;
  }

  /// A key described for the reference only: its section's reader knows it.
  setting_info& described(std::string path, setting_type type, std::string help) {
    auto& s = add(std::move(path), type, std::move(help));
    s.described = true;
    return s;
  }

  void rule(std::string section, std::function<void(const T&, const std::string&, errors_t&)> check) {
    rules.push_back({std::move(section), std::move(check)});
  }

  /// Fills each key's default from `defaults` (a default-constructed `T`).
  key_table<T> done(const T& defaults = T{}) {
    for (auto& s : keys)
      if (s.get)
        s.default_value = s.get(defaults);
    return {std::move(keys), std::move(rules)};
  }
};

// -- reading through a table ---------------------------------------------------------------

/// Checks `v` against the type and bounds of `s`; appends an error and
/// returns false when it does not fit.
bool fits(const setting_info& s, const value& v, const std::string& path, errors_t& errors) {
  auto refuse = [&](std::string why) {
    errors.push_back({path, std::move(why)});
    return false;
  };
  switch (s.type) {
    case setting_type::boolean:
      return v.is_bool() || refuse("must be true or false");
    case setting_type::integer:
    case setting_type::seconds:
    case setting_type::milliseconds:
      if (!v.is_integer())
        return refuse("must be an integer");
      if (static_cast<double>(v.as_int()) < s.lo || static_cast<double>(v.as_int()) > s.hi)
        return refuse("must be " + s.range());
      return true;
    case setting_type::number:
      if (!v.is_number())
        return refuse("must be a number");
      if (v.as_double() < s.lo || v.as_double() > s.hi)
        return refuse("must be " + s.range());
      return true;
    case setting_type::string:
      return v.is_string() || refuse("must be a string");
    case setting_type::string_list:
      if (!v.is_array()
          || std::any_of(v.as_array().begin(), v.as_array().end(), [](auto& x) { return !x.is_string(); }))
        return refuse("must be an array of strings");
      return true;
    case setting_type::string_map:
      if (!v.is_object())
        return refuse("must be an object of strings");
      for (auto& [k, x] : v.as_object())
        if (!x.is_string()) {
          errors.push_back({path + "." + k, "must be a string"});
          return false;
        }
      return true;
    case setting_type::enumeration:
      if (!v.is_string())
        return refuse("must be a string");
      if (std::find(s.values.begin(), s.values.end(), v.as_string()) == s.values.end()) {
        auto why = s.refusal;
        if (auto at = why.find("{value}"); at != std::string::npos)
          why.replace(at, 7, v.as_string());
        return refuse(why);
      }
      return true;
    case setting_type::section:
      return true;
  }
  return false;
}

template <class T>
void read_one(const setting<T>& s, T& target, const value& v, const std::string& path, errors_t& errors) {
  if (s.read) {
    collect(errors, [&] { s.read(target, v, path, errors); });
    return;
  }
  if (!fits(s, v, path, errors))
    return;
  auto before = errors.size();
  if (s.check)
    collect(errors, [&] { s.check(v, path, errors); });
  if (errors.size() == before && s.set)
    s.set(target, v);
}

/// Reads the object `v` at table path `prefix` (document path `path`) into
/// `target`: known keys in table order, then the unknown ones refused, then
/// the rules of the object when all of it was well.
template <class T>
void read_object(const std::vector<setting<T>>& keys, const std::vector<setting_rule<T>>& rules,
                 const std::string& prefix, const value& v, const std::string& path, T& target, errors_t& errors) {
  if (!v.is_object()) {
    errors.push_back({path, "must be an object"});
    return;
  }
  auto before = errors.size();
  std::vector<std::string> known;
  for (auto& s : keys) {
    if (!prefix.empty() && !starts_with(s.path, prefix))
      continue;
    auto rest = prefix.empty() ? s.path : s.path.substr(prefix.size() + 1);
    auto child = rest.substr(0, rest.find('.'));
    if (std::find(known.begin(), known.end(), child) != known.end())
      continue;
    known.push_back(child);
    auto* item = v.find(child);
    if (!item)
      continue;
    if (child == rest)
      read_one(s, target, *item, path + "." + child, errors);
    else
      read_object(keys, rules, prefix.empty() ? child : prefix + "." + child, *item, path + "." + child, target,
                  errors);
  }
  for (auto& [k, item] : v.as_object())
    if (std::find(known.begin(), known.end(), k) == known.end())
      errors.push_back({path + "." + k, "unknown key"});
  if (errors.size() != before)
    return;
  for (auto& r : rules)
    if (r.section == prefix)
      collect(errors, [&] { r.check(target, path, errors); });
}

/// The values of `target` under table path `prefix`, as an object.
template <class T>
value values_of(const std::vector<setting<T>>& keys, const std::string& prefix, const T& target) {
  value out(json::object{});
  for (auto& s : keys) {
    if (!s.get || (!prefix.empty() && !starts_with(s.path, prefix)))
      continue;
    auto v = s.get(target);
    if (s.secret && !(v.is_string() && v.as_string().empty()) && !(v.is_object() && v.size() == 0))
      v = value("[redacted]");
    put(out, prefix.empty() ? s.path : s.path.substr(prefix.size() + 1), std::move(v));
  }
  return out;
}

// -- mcpServers.<name> ---------------------------------------------------------------------

/// One `mcpServers` entry as written: the service and its `type`.
struct server_entry {
  service_config svc;
  std::string type;
};

table_builder<server_entry> server_keys() {
  table_builder<server_entry> k;
  k.live = true;
  k.string(
    "mcpServers.<name>.command", [](auto& e) -> auto& { return e.svc.command; },
    "Program of a stdio server (searched in PATH); exactly one of command and url.");
  k.strings(
    "mcpServers.<name>.args", [](auto& e) -> auto& { return e.svc.args; }, "Arguments of the stdio server.");
  k.pairs(
     "mcpServers.<name>.env", [](auto& e) -> auto& { return e.svc.env; }, "Variables set for the stdio server.")
    .is_secret();
  k.string(
    "mcpServers.<name>.cwd", [](auto& e) -> auto& { return e.svc.cwd; }, "Working directory of the stdio server.");
  k.strings(
    "mcpServers.<name>.inheritEnv", [](auto& e) -> auto& { return e.svc.inherit_env; },
    "Variables of Bulwark's environment passed on to the stdio server besides PATH, HOME, LANG and the like.");
  k.string(
    "mcpServers.<name>.url", [](auto& e) -> auto& { return e.svc.url; },
    "URL of a Streamable HTTP server (http:// or https://).");
  k.pairs(
     "mcpServers.<name>.headers", [](auto& e) -> auto& { return e.svc.headers; },
     "Headers sent with every request to the HTTP server (credentials go here); a value may be a ${env:NAME} or "
     "${file:PATH} reference (a file is read again when it changes).")
    .is_secret();
  k.choice(
    "mcpServers.<name>.auth.type", {"headers", "clientCredentials", "tokenExchange"},
    "must be \"headers\", \"clientCredentials\" or \"tokenExchange\"",
    [](const server_entry& e) {
      switch (e.svc.auth.type) {
        case service_auth::kind::client_credentials:
          return "clientCredentials";
        case service_auth::kind::token_exchange:
          return "tokenExchange";
        default:
          return "headers";
      }
    },
    [](server_entry& e, const std::string& w) {
      e.svc.auth.type = w == "clientCredentials" ? service_auth::kind::client_credentials
                        : w == "tokenExchange"   ? service_auth::kind::token_exchange
                                                 : service_auth::kind::headers;
    },
    "How Bulwark authenticates to the HTTP server: only the configured headers; an OAuth 2.0 client-credentials "
    "token (RFC 6749 4.4) from auth.tokenUrl, cached until shortly before it expires, renewed once for all "
    "waiting calls, and fetched again once when the server answers 401; or tokenExchange: each call with a token "
    "the endpoint exchanged the caller's own for (RFC 8693, cached per caller), Bulwark's own requests with a "
    "client-credentials token. tokenExchange needs auth.mode \"oauth\".");
  k.string(
    "mcpServers.<name>.auth.tokenUrl", [](auto& e) -> auto& { return e.svc.auth.token_url; },
    "Token endpoint (http:// or https://) of a clientCredentials server.");
  k.string(
    "mcpServers.<name>.auth.clientId", [](auto& e) -> auto& { return e.svc.auth.client_id; },
    "Client id at the token endpoint; may be a ${env:NAME} or ${file:PATH} reference.");
  k.string(
     "mcpServers.<name>.auth.clientSecret", [](auto& e) -> auto& { return e.svc.auth.client_secret; },
     "Client secret at the token endpoint; may be a ${env:NAME} or ${file:PATH} reference (a file is read again "
     "when it changes).")
    .is_secret();
  k.strings(
    "mcpServers.<name>.auth.scopes", [](auto& e) -> auto& { return e.svc.auth.scopes; },
    "Scopes asked for (the token request's scope).");
  k.string(
    "mcpServers.<name>.auth.resource", [](auto& e) -> auto& { return e.svc.auth.resource; },
    "The token request's resource (RFC 8707); empty: the server's url.");
  k.string(
    "mcpServers.<name>.auth.audience", [](auto& e) -> auto& { return e.svc.auth.audience; },
    "The token exchange's audience (RFC 8693); empty: none asked for.");
  k.boolean(
    "mcpServers.<name>.passthrough", [](auto& e) -> auto& { return e.svc.auth.passthrough; },
    "Calls go with the caller's own OAuth access token (auth.mode \"oauth\"). Off by default: MCP's security "
    "guidance forbids passing a token on that was issued for Bulwark; prefer auth.type tokenExchange.");
  k.choice(
    "mcpServers.<name>.auth.clientAuthentication", {"basic", "body"}, "must be \"basic\" or \"body\"",
    [](const server_entry& e) { return e.svc.auth.basic ? "basic" : "body"; },
    [](server_entry& e, const std::string& w) { e.svc.auth.basic = w == "basic"; },
    "How the client id and secret reach the token endpoint: HTTP Basic, or client_id and client_secret in the "
    "form body.");
  k.choice(
    "mcpServers.<name>.type", {"stdio", "http", "streamable-http"},
    "must be stdio, http or streamable-http (sse is not supported)", [](const server_entry& e) { return e.type; },
    [](server_entry& e, const std::string& s) { e.type = s; },
    "The transport as other clients name it; must agree with command or url.");
  return k;
}

const std::vector<setting<server_entry>>& server_settings() {
  static const auto table = server_keys().done();
  return table.keys;
}

/// The checks of one entry that span its keys.
void check_server(const std::string& path, const server_entry& e) {
  auto& svc = e.svc;
  auto& type = e.type;
  if (svc.command.empty() == svc.url.empty())
    bad(path, "needs exactly one of \"command\" (stdio) or \"url\" (Streamable HTTP)");
  if (type == "stdio" && !svc.url.empty())
    bad(path + ".type", "is \"stdio\", but the entry has a \"url\" (stdio servers are started by \"command\")");
  if ((type == "http" || type == "streamable-http") && !svc.command.empty())
    bad(path + ".type", "is \"" + type + "\", but the entry has a \"command\" (HTTP servers are reached by \"url\")");
  for (auto& name : svc.inherit_env)
    if (name.empty() || name.find('=') != std::string::npos)
      bad(path + ".inheritEnv", "holds \"" + name + "\", which is no variable name");
  if (!svc.url.empty())
    check_http_url(path + ".url", svc.url);
  if (!svc.url.empty() && (!svc.args.empty() || !svc.env.empty() || !svc.cwd.empty() || !svc.inherit_env.empty()))
    bad(path, "args, env, inheritEnv and cwd apply to stdio servers (\"command\") only");
  if (!svc.command.empty() && !svc.headers.empty())
    bad(path + ".headers", "headers apply to HTTP servers (\"url\") only");
  for (auto& [name, text] : svc.headers)
    if (auto why = secrets::check(text); !why.empty())
      bad(path + ".headers." + name, why);
  auto& auth = svc.auth;
  if (auth.passthrough && !svc.command.empty())
    bad(path + ".passthrough", "applies to HTTP servers (\"url\") only");
  if (auth.passthrough && auth.type == service_auth::kind::token_exchange)
    bad(path + ".passthrough", "and auth.type \"tokenExchange\" exclude each other: a call goes with one token");
  if (auth.type != service_auth::kind::token_exchange && !auth.audience.empty())
    bad(path + ".auth.audience", "applies to auth.type \"tokenExchange\"");
  if (auth.type == service_auth::kind::headers) {
    if (!auth.token_url.empty() || !auth.client_id.empty() || !auth.client_secret.empty() || !auth.scopes.empty()
        || !auth.resource.empty())
      bad(path + ".auth",
          "tokenUrl, clientId, clientSecret, scopes and resource apply to types \"clientCredentials\" and "
          "\"tokenExchange\"");
    return;
  }
  std::string grant = auth.type == service_auth::kind::token_exchange ? "tokenExchange" : "clientCredentials";
  if (!svc.command.empty())
    bad(path + ".auth.type", "applies to HTTP servers (\"url\") only");
  if (auth.token_url.empty())
    bad(path + ".auth.tokenUrl", "is needed for type \"" + grant + "\"");
  check_http_url(path + ".auth.tokenUrl", auth.token_url);
  if (auth.client_id.empty())
    bad(path + ".auth.clientId", "is needed for type \"" + grant + "\"");
  for (auto [key, text] : {std::pair{"clientId", &auth.client_id}, std::pair{"clientSecret", &auth.client_secret}})
    if (auto why = secrets::check(*text); !why.empty())
      bad(path + ".auth." + key, why);
  for (auto& h : svc.headers)
    if (text::iequals(h.first, "authorization"))
      bad(path + ".headers.Authorization", "is set by auth.type \"" + grant + "\": leave it out");
}

void read_servers(config& cfg, const value& v, const std::string& path, errors_t& errors) {
  if (!v.is_object())
    bad(path, "must be an object of servers");
  auto& services = cfg.gateway.services;
  services.clear();
  for (auto& [name, item] : v.as_object()) {
    auto here = path + "." + name;
    if (name.empty() || name.size() > 64) {
      errors.push_back({here, "a server name must be 1 to 64 characters"});
      continue;
    }
    if (!std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; })) {
      errors.push_back({here, "a server name may hold only letters, digits, '_' and '-'"});
      continue;
    }
    server_entry e;
    e.svc.name = name;
    auto before = errors.size();
    read_object(server_settings(), {}, "mcpServers.<name>", item, here, e, errors);
    if (errors.size() == before)
      collect(errors, [&] { check_server(here, e); });
    // Kept when refused, so that its `services` entry is judged on its own.
    services.push_back(std::move(e.svc));
  }
}

value show_servers(const config& cfg) {
  value out(json::object{});
  for (auto& svc : cfg.gateway.services)
    out.set(svc.name, values_of(server_settings(), "mcpServers.<name>",
                                server_entry{svc, svc.is_stdio() ? "stdio" : "streamable-http"}));
  return out;
}

// -- services.<name> -----------------------------------------------------------------------

const char* const prefix_words = "must be one of conditional, always, never";

prefix_mode prefix_of(const std::string& s) {
  return s == "always" ? prefix_mode::always : s == "never" ? prefix_mode::never : prefix_mode::conditional;
}

std::string prefix_name(prefix_mode m) {
  return m == prefix_mode::always ? "always" : m == prefix_mode::never ? "never" : "conditional";
}

void check_separator_value(const value& v, const std::string& path, errors_t&) {
  check_separator(path, v.as_string());
}

/// An object keyed by a name the user chooses; `each` reads one entry.
template <class F>
void read_map(const value& v, const std::string& path, const std::string& must, errors_t& errors, F each) {
  if (!v.is_object())
    bad(path, must);
  for (auto& [name, item] : v.as_object())
    collect(errors, [&, &name = name, &item = item] { each(name, item, path + "." + name); });
}

/// A tool name as MCP allows it (SEP-986: 1 to 128 of A-Z a-z 0-9 _ - .).
bool valid_tool_name(const std::string& n) {
  return !n.empty() && n.size() <= 128 && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

const std::vector<std::string>& hint_names() {
  static const std::vector<std::string> names{"readOnlyHint", "idempotentHint", "destructiveHint", "openWorldHint"};
  return names;
}

void read_tool_overrides(service_settings& s, const value& v, const std::string& path, errors_t& errors) {
  s.tools.clear();
  read_map(v, path, "must be an object keyed by the service's tool name", errors,
           [&](const std::string& tool, const value& item, const std::string& here) {
             if (!item.is_object())
               bad(here, "must be an object (name, title, description, annotations, hidden)");
             tool_override o;
             for (auto& [key, x] : item.as_object()) {
               auto at = here + "." + key;
               if (key == "name" || key == "title" || key == "description") {
                 if (!x.is_string())
                   bad(at, "must be a string");
                 (key == "name" ? o.name : key == "title" ? o.title : o.description) = x.as_string();
               } else if (key == "hidden") {
                 if (!x.is_bool())
                   bad(at, "must be true or false");
                 o.hidden = x.as_bool();
               } else if (key == "annotations") {
                 if (!x.is_object())
                   bad(at, "must be an object of hints");
                 for (auto& [hint, b] : x.as_object()) {
                   auto& known = hint_names();
                   if (std::find(known.begin(), known.end(), hint) == known.end())
                     bad(at + "." + hint, "unknown hint: one of " + joined(known, ", "));
                   if (!b.is_bool())
                     bad(at + "." + hint, "must be true or false");
                   o.hints[hint] = b.as_bool();
                 }
               } else {
                 bad(at, "unknown key");
               }
             }
             if (o.name && !valid_tool_name(*o.name))
               bad(here + ".name", "must be 1 to 128 letters, digits, '_', '-' or '.'");
             s.tools[tool] = std::move(o);
           });
  std::map<std::string, std::string> renamed; // new name -> tool
  for (auto& [tool, o] : s.tools)
    if (o.name && !o.hidden)
      if (auto [at, fresh] = renamed.emplace(*o.name, tool); !fresh)
        errors.push_back({path + "." + tool + ".name", "is also the new name of " + at->second});
}

value show_tool_overrides(const service_settings& s) {
  value out(json::object{});
  for (auto& [tool, o] : s.tools) {
    value v(json::object{});
    if (o.name)
      v.set("name", *o.name);
    if (o.title)
      v.set("title", *o.title);
    if (o.description)
      v.set("description", *o.description);
    if (!o.hints.empty()) {
      value hints(json::object{});
      for (auto& [h, b] : o.hints)
        hints.set(h, b);
      v.set("annotations", std::move(hints));
    }
    if (o.hidden)
      v.set("hidden", true);
    out.set(tool, std::move(v));
  }
  return out;
}

table_builder<service_settings> service_keys() {
  table_builder<service_settings> k;
  k.live = true;
  k.millis(
    "services.<name>.timeoutMs", [](auto& s) -> auto& { return s.timeout; }, 1, 3600000,
    "Deadline of one downstream call.");
  k.integer(
    "services.<name>.retry.attempts", [](auto& s) -> auto& { return s.retry.attempts; }, 1, 10,
    "Tries of an idempotent call, the first included.");
  k.millis(
    "services.<name>.retry.baseDelayMs", [](auto& s) -> auto& { return s.retry.base_delay; }, 0, 600000,
    "Delay before the first retry; doubled for each next one.");
  k.millis(
    "services.<name>.retry.maxDelayMs", [](auto& s) -> auto& { return s.retry.max_delay; }, 0, 600000,
    "Longest delay between retries (not below baseDelayMs).");
  k.number(
    "services.<name>.retry.jitter", [](auto& s) -> auto& { return s.retry.jitter; }, 0, 1,
    "Share of each delay drawn at random.");
  k.integer(
    "services.<name>.breaker.consecutiveFailures", [](auto& s) -> auto& { return s.breaker.consecutive_failures; }, 1,
    100000, "Failures in a row that open the breaker.");
  k.number(
    "services.<name>.breaker.failureRate", [](auto& s) -> auto& { return s.breaker.failure_rate; }, 0.01, 1,
    "Share of failed calls in the window that opens the breaker.");
  k.seconds(
    "services.<name>.breaker.windowSeconds", [](auto& s) -> auto& { return s.breaker.window; }, 1, 86400,
    "Window of the failure rate.");
  k.integer(
    "services.<name>.breaker.minimumCalls", [](auto& s) -> auto& { return s.breaker.minimum_calls; }, 1, 1000000,
    "Calls in the window before the failure rate counts.");
  k.millis(
    "services.<name>.breaker.openMs", [](auto& s) -> auto& { return s.breaker.open_duration; }, 1, 86400000,
    "How long an open breaker refuses calls before it probes.");
  k.integer(
    "services.<name>.breaker.halfOpenProbes", [](auto& s) -> auto& { return s.breaker.half_open_probes; }, 1, 1000,
    "Calls let through while half open.");
  k.integer(
    "services.<name>.breaker.successesToClose", [](auto& s) -> auto& { return s.breaker.successes_to_close; }, 1, 1000,
    "Successful probes that close the breaker.");
  k.millis(
    "services.<name>.cache.ttlMs", [](auto& s) -> auto& { return s.cache_ttl; }, 0, 86400000LL * 7,
    "How long a result stays fresh; 0: results are not cached.");
  k.millis(
    "services.<name>.cache.maxStaleMs", [](auto& s) -> auto& { return s.max_stale; }, 0, 86400000LL * 7,
    "How long past its freshness a result may still answer when the service fails.");
  k.strings(
    "services.<name>.cache.tools", [](auto& s) -> auto& { return s.cacheable_tools; },
    "Tools whose results are cached besides those marked readOnlyHint.");
  k.boolean(
    "services.<name>.cache.resources", [](auto& s) -> auto& { return s.cache_resources; },
    "Cache resource reads too, per URI.");
  k.choice(
    "services.<name>.cache.scope", {"private", "public"}, "must be \"private\" or \"public\"",
    [](const service_settings& s) { return s.cache_public ? "public" : "private"; },
    [](service_settings& s, const std::string& w) { s.cache_public = w == "public"; },
    "Whether cached results are kept per caller or shared between callers.");
  k.strings(
    "services.<name>.idempotentTools", [](auto& s) -> auto& { return s.idempotent_tools; },
    "Tools retried on failure besides those marked idempotentHint.");
  k.integer(
    "services.<name>.ratePerMinute", [](auto& s) -> auto& { return s.rate_per_minute; }, 0, 100000000,
    "Calls per minute the service takes from all callers together; 0: unlimited.");
  k.choice(
    "services.<name>.priority", {"critical", "high", "normal", "low"}, "",
    [](const service_settings& s) { return s.priority; },
    [](service_settings& s, const std::string& w) { s.priority = w; }, "Queue priority of the service's calls.");
  k.choice(
    "services.<name>.fallback", {"stale", "static", "none"}, "",
    [](const service_settings& s) {
      return s.fallback == fallback_mode::static_message ? "static"
             : s.fallback == fallback_mode::none         ? "none"
                                                         : "stale";
    },
    [](service_settings& s, const std::string& w) {
      s.fallback = w == "static" ? fallback_mode::static_message
                   : w == "none" ? fallback_mode::none
                                 : fallback_mode::stale;
    },
    "What answers when the service cannot: a stale cached result, the static message, or an error.");
  k.string(
    "services.<name>.fallbackMessage", [](auto& s) -> auto& { return s.fallback_message; },
    "The static answer (required with fallback \"static\").");
  k.choice(
    "services.<name>.protocol", {"auto", "2025-11-25", "2026-07-28"}, "",
    [](const service_settings& s) { return s.protocol; },
    [](service_settings& s, const std::string& w) { s.protocol = w; },
    "MCP era spoken to an HTTP service; auto asks server/discover first.");
  k.choice(
     "services.<name>.prefix", {"conditional", "always", "never"}, prefix_words, {},
     [](service_settings& s, const std::string& w) { s.prefix = prefix_of(w); },
     "How the service's tool names are prefixed; unset: gateway.prefix.")
    .get = [](const service_settings& s) { return s.prefix ? value(prefix_name(*s.prefix)) : value(); };
  auto& sep = k.add("services.<name>.separator", setting_type::string,
                    "Between the service's name and a tool's; unset: gateway.separator.");
  sep.get = [](const service_settings& s) { return s.separator ? value(*s.separator) : value(); };
  sep.set = [](service_settings& s, const value& v) { s.separator = v.as_string(); };
  sep.check = check_separator_value;
  k.string(
    "services.<name>.tls.caFile", [](auto& s) -> auto& { return s.tls.ca_file; },
    "Certificates to trust for an https:// service instead of the system's.");
  k.string(
    "services.<name>.tls.certFile", [](auto& s) -> auto& { return s.tls.cert_file; },
    "Client certificate presented to the service (with keyFile).");
  k.string(
    "services.<name>.tls.keyFile", [](auto& s) -> auto& { return s.tls.key_file; },
    "Private key of the client certificate.");
  k.section("services.<name>.tools", show_tool_overrides, read_tool_overrides,
            "How the service's tools appear to clients, by the service's own tool name: a new name, title or "
            "description, annotation hints set over the service's own (an idempotentHint set here drives "
            "retries, a readOnlyHint caching), or hidden. Lists and calls alike; policies still name the "
            "service's own tool name.");
  k.described("services.<name>.tools.<tool>.name", setting_type::string,
              "The name clients see (a prefix mode still applies).");
  k.described("services.<name>.tools.<tool>.title", setting_type::string, "The title clients see.");
  k.described("services.<name>.tools.<tool>.description", setting_type::string, "The description clients see.");
  k.described("services.<name>.tools.<tool>.annotations", setting_type::section,
              "readOnlyHint, idempotentHint, destructiveHint, openWorldHint: true or false.");
  k.described("services.<name>.tools.<tool>.hidden", setting_type::boolean,
              "Neither listed nor callable through Bulwark.");
  k.rule("services.<name>.retry", [](const service_settings& s, const std::string& path, errors_t&) {
    if (s.retry.max_delay < s.retry.base_delay)
      bad(path + ".maxDelayMs", "must not be below baseDelayMs");
  });
  k.rule("services.<name>", [](const service_settings& s, const std::string& path, errors_t&) {
    check_tls(path + ".tls", s.tls);
    if (s.fallback == fallback_mode::static_message && s.fallback_message.empty())
      bad(path + ".fallbackMessage", "is required when fallback is \"static\"");
  });
  return k;
}

const key_table<service_settings>& service_settings_keys() {
  static const auto table = service_keys().done();
  return table;
}

void read_services(config& cfg, const value& v, const std::string& path, errors_t& errors) {
  if (!v.is_object())
    bad(path, "must be an object keyed by server name");
  auto& table = service_settings_keys();
  for (auto& [name, item] : v.as_object()) {
    auto here = path + "." + name;
    auto& services = cfg.gateway.services;
    auto it = std::find_if(services.begin(), services.end(), [&](const service_config& c) { return c.name == name; });
    if (it == services.end()) {
      errors.push_back({here, "no server of that name in mcpServers"});
      continue;
    }
    auto before = errors.size();
    read_object(table.keys, table.rules, "services.<name>", item, here, it->settings, errors);
    if (errors.size() == before && !it->settings.tls.empty() && !is_https(it->url))
      errors.push_back({here + ".tls", "applies to https:// servers only"});
  }
}

value show_services(const config& cfg) {
  value out(json::object{});
  for (auto& svc : cfg.gateway.services)
    out.set(svc.name, values_of(service_settings_keys().keys, "services.<name>", svc.settings));
  return out;
}

// -- gateway, rate limits, queue, alerts: maps read by hand ---------------------------------

void read_policy(const value& v, const std::string& path, access_policy& out) {
  if (!v.is_object())
    bad(path, "must be an object");
  for (auto& [k, x] : v.as_object()) {
    if (k != "allow" && k != "deny")
      bad(path + "." + k, "unknown key");
    if (!x.is_array() || std::any_of(x.as_array().begin(), x.as_array().end(), [](auto& s) { return !s.is_string(); }))
      bad(path + "." + k, "must be an array of strings");
  }
  access_policy p = out;
  if (auto* a = v.find("allow"))
    p.allow = strings_of(*a);
  if (auto* d = v.find("deny"))
    p.deny = strings_of(*d);
  for (auto* list : {&p.allow, &p.deny})
    for (auto& pattern : *list)
      if (pattern.find(':') == std::string::npos)
        bad(path, "pattern '" + pattern + "' must have the form server:tool (wildcards allowed)");
  out = std::move(p);
}

value show_policy(const access_policy& p) {
  return value::make_object({{"allow", strings_value(p.allow)}, {"deny", strings_value(p.deny)}});
}

const std::pair<const char*, std::chrono::milliseconds> windows[] = {
  {"perSecond", std::chrono::seconds(1)},
  {"perMinute", std::chrono::minutes(1)},
  {"perHour", std::chrono::hours(1)},
  {"perDay", std::chrono::hours(24)},
};

/// `{"perSecond": n, "perMinute": n, "perHour": n, "perDay": n}` -> windows.
std::vector<rate_limit> read_windows(const value& v, const std::string& path) {
  if (!v.is_object())
    bad(path, "must be an object");
  for (auto& [key, item] : v.as_object())
    if (std::none_of(std::begin(windows), std::end(windows), [&](auto& w) { return key == w.first; }))
      bad(path + "." + key, "unknown key (expected perSecond, perMinute, perHour or perDay)");
  std::vector<rate_limit> out;
  for (auto& [key, per] : windows)
    if (auto* n = v.find(key)) {
      if (!n->is_integer())
        bad(path + "." + key, "must be an integer");
      if (n->as_int() < 1 || n->as_int() > 1000000000)
        bad(path + "." + key, "must be between 1 and 1000000000");
      out.push_back(rate_limit{static_cast<uint64_t>(n->as_int()), per});
    }
  if (out.empty())
    bad(path, "needs at least one of perSecond, perMinute, perHour, perDay");
  return out;
}

value show_windows(const std::vector<rate_limit>& limits) {
  if (limits.empty())
    return value();
  value out(json::object{});
  for (auto& l : limits)
    for (auto& [key, per] : windows)
      if (l.per == per)
        out.set(key, static_cast<unsigned long long>(l.count));
  return out;
}

void read_alert_rules(config& cfg, const value& v, const std::string& path, errors_t& errors) {
  read_map(v, path, "must be an object keyed by rule name", errors,
           [&](const std::string& rule, const value& settings, const std::string& here) {
             if (!settings.is_object())
               bad(here, "must be an object");
             for (auto& [key, x] : settings.as_object()) {
               if (!x.is_bool() && !x.is_number())
                 bad(here + "." + key, "must be a number (enabled: true or false)");
               double n = x.is_bool() ? (x.as_bool() ? 1 : 0) : x.as_double();
               auto err = apply_alert_setting(cfg.runtime.ops.alerts, rule, key, n);
               if (!err.empty())
                 bad(here + "." + key, err);
             }
           });
}

value show_alert_rules(const config& cfg) {
  value out(json::object{});
  for (auto& r : cfg.runtime.ops.alerts.rules)
    out.set(r.name, value::make_object({{"enabled", r.enabled},
                                        {"threshold", r.threshold},
                                        {"minCount", static_cast<unsigned long long>(r.min_count)},
                                        {"cooldownSeconds", static_cast<double>(r.cooldown.count()) / 1000.0},
                                        {"severity", r.severity}}));
  return out;
}

// -- the configuration ---------------------------------------------------------------------

std::string level_words() {
  return "must be one of debug, info, notice, warning, error, critical, alert, emergency";
}

void check_token_hash(const char* what, const value& v, const std::string& path) {
  auto& t = v.as_string();
  if (!t.empty() && !is_sha256_hex(t))
    bad(path, std::string("must be the lower-case hex SHA-256 of the ") + what + " token (64 characters)");
}

// -- scopes (auth.mode "oauth") -----------------------------------------------------------

/// An object of pattern or claim -> array of scope strings.
std::vector<std::pair<std::string, std::vector<std::string>>> read_scope_map(const value& v, const std::string& path) {
  if (!v.is_object())
    bad(path, "must be an object of arrays of scopes");
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (auto& [key, scopes] : v.as_object()) {
    if (key.empty())
      bad(path, "holds an empty pattern");
    if (!scopes.is_array() || scopes.as_array().empty())
      bad(path + "." + key, "must be a non-empty array of scopes");
    std::vector<std::string> list;
    for (auto& s : scopes.as_array()) {
      if (!s.is_string() || s.as_string().empty() || s.as_string().find_first_of(" \"\\") != std::string::npos)
        bad(path + "." + key, "must hold scope names (no spaces or quotes)");
      list.push_back(s.as_string());
    }
    out.emplace_back(key, std::move(list));
  }
  return out;
}

value show_scope_map(const std::vector<std::pair<std::string, std::vector<std::string>>>& m) {
  value out(json::object{});
  for (auto& [k, scopes] : m)
    out.set(k, strings_value(scopes));
  return out;
}

void read_required_scopes(config& c, const value& v, const std::string& path, errors_t& errors) {
  auto& r = c.runtime.ops.scopes;
  r.tools.clear();
  r.prompts.clear();
  r.resources.clear();
  if (!v.is_object())
    bad(path, "must be an object with tools, prompts and resources");
  for (auto& [kind, m] : v.as_object()) {
    auto here = path + "." + kind;
    auto* target = kind == "tools"       ? &r.tools
                   : kind == "prompts"   ? &r.prompts
                   : kind == "resources" ? &r.resources
                                         : nullptr;
    if (!target) {
      errors.push_back({here, "unknown key (tools, prompts, resources)"});
      continue;
    }
    collect(errors, [&] { *target = read_scope_map(m, here); });
  }
}

value show_required_scopes(const config& c) {
  auto& r = c.runtime.ops.scopes;
  return value::make_object({{"tools", show_scope_map(r.tools)},
                             {"prompts", show_scope_map(r.prompts)},
                             {"resources", show_scope_map(r.resources)}});
}

void read_claim_scopes(config& c, const value& v, const std::string& path, errors_t&) {
  auto& grants = c.auth.oauth.claim_scopes;
  grants.clear();
  for (auto& [claim, scopes] : read_scope_map(v, path)) {
    auto eq = claim.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == claim.size())
      bad(path + "." + claim, "must be written claim=value");
    grants[claim] = scopes;
  }
}

value show_claim_scopes(const config& c) {
  value out(json::object{});
  for (auto& [claim, scopes] : c.auth.oauth.claim_scopes)
    out.set(claim, strings_value(scopes));
  return out;
}

table_builder<config> config_keys() {
  table_builder<config> k;
  k.string(
    "server.name", [](auto& c) -> auto& { return c.runtime.server_name; },
    "Name the server gives in initialize and server/discover.");
  k.string(
    "server.version", [](auto& c) -> auto& { return c.runtime.server_version; },
    "Version the server gives with its name.");
  k.string(
    "server.instructions", [](auto& c) -> auto& { return c.runtime.instructions; },
    "Instructions for clients, sent in initialize.");

  k.boolean(
     "http.enabled", [](auto& c) -> auto& { return c.http_enabled; }, "Serve MCP over Streamable HTTP.")
    .with_switch("--no-http", "false");
  k.string(
     "http.address", [](auto& c) -> auto& { return c.http.address; },
     "Bind address; other than loopback needs authentication (auth.mode).")
    .with_env("BULWARK_ADDRESS")
    .with_flag("--address", "ADDR");
  k.integer(
     "http.port", [](auto& c) -> auto& { return c.http.port; }, 0, 65535,
     "TCP port (0 picks a free one; the chosen port is logged).")
    .with_env("BULWARK_PORT")
    .with_flag("--port", "N");
  k.string(
     "http.path", [](auto& c) -> auto& { return c.http.path; }, "Path of the MCP endpoint.")
    .check = [](const value& v, const std::string& path, errors_t&) {
    if (v.as_string().empty() || v.as_string().front() != '/')
      bad(path, "must start with '/'");
  };
  k.integer(
    "http.bodyLimitBytes", [](auto& c) -> auto& { return c.http.body_limit; }, 1024, 64LL << 20,
    "Largest request body; larger ones get 413.");
  k.integer(
    "http.headerLimitBytes", [](auto& c) -> auto& { return c.http.header_limit; }, 1024, 1 << 20,
    "Largest request header block; larger ones get 431.");
  k.integer(
    "http.maxConnections", [](auto& c) -> auto& { return c.http.max_connections; }, 1, 1000000,
    "Connections served at once; more get 503.");
  k.seconds(
    "http.readTimeoutSeconds", [](auto& c) -> auto& { return c.http.read_timeout; }, 1, 3600,
    "Time to receive one whole request.");
  k.seconds(
    "http.idleTimeoutSeconds", [](auto& c) -> auto& { return c.http.idle_timeout; }, 1, 86400,
    "Keep-alive between requests.");
  k.seconds(
    "http.sseKeepAliveSeconds", [](auto& c) -> auto& { return c.http.sse_keep_alive; }, 0, 3600,
    "An idle event stream sends a comment this often, so that proxies keep it open; 0: never.");
  k.seconds(
    "http.writeTimeoutSeconds", [](auto& c) -> auto& { return c.http.write_timeout; }, 1, 3600,
    "A connection whose writes make no progress this long is closed.");
  k.integer(
    "http.writeQueueLimitBytes", [](auto& c) -> auto& { return c.http.write_queue_limit; }, 16 << 10, 1LL << 30,
    "Bytes queued for a slow reader before its connection is closed.");
  k.strings(
    "http.allowedOrigins", [](auto& c) -> auto& { return c.http.allowed_origins; },
    "Origins admitted besides loopback ones (browsers' Origin header).");
  k.strings(
    "http.allowedHosts", [](auto& c) -> auto& { return c.http.allowed_hosts; },
    "Host header values admitted besides loopback ones.");
  k.integer(
    "http.threads", [](auto& c) -> auto& { return c.http.threads; }, 1, 64, "I/O threads of the stealing scheduler.");
  k.integer(
    "http.maxConnectionsPerAddress", [](auto& c) -> auto& { return c.http.max_connections_per_address; }, 1, 1000000,
    "Connections one client address may hold; more get 503.");
  k.integer(
    "http.maxConnectionsPerIdentity", [](auto& c) -> auto& { return c.http.max_connections_per_identity; }, 1, 1000000,
    "Connections one authenticated caller may hold; more get 503.");
  k.integer(
    "http.corsMaxAgeSeconds", [](auto& c) -> auto& { return c.http.cors_max_age; }, 0, 86400,
    "How long browsers may cache a CORS preflight answer.");

  k.choice(
    "auth.mode", {"none", "keys", "oauth"}, "must be \"none\", \"keys\" or \"oauth\"",
    [](const config& c) {
      return c.auth.mode == auth_mode::keys ? "keys" : c.auth.mode == auth_mode::oauth ? "oauth" : "none";
    },
    [](config& c, const std::string& w) {
      c.auth.mode = w == "keys" ? auth_mode::keys : w == "oauth" ? auth_mode::oauth : auth_mode::none;
    },
    "How requests are authenticated: nobody (loopback only), API keys of the key file, or OAuth tokens.");
  k.live = true;
  k.string(
     "auth.keyFile", [](auto& c) -> auto& { return c.auth.key_file; },
     "The API key file (bulwark keys ...); required with mode \"keys\".")
    .with_flag("--key-file", "FILE");
  k.live = false;
  k.boolean(
     "auth.allowUnauthenticated", [](auto& c) -> auto& { return c.auth.allow_unauthenticated; },
     "Serve a non-loopback address with mode \"none\".")
    .with_switch("--allow-unauthenticated", "true");
  k.live = true;
  k.string(
    "auth.oauth.issuer", [](auto& c) -> auto& { return c.auth.oauth.issuer; },
    "Issuer (iss) of accepted access tokens.");
  // The resource names this server and where its metadata is served.
  k.live = false;
  k.string(
    "auth.oauth.resource", [](auto& c) -> auto& { return c.auth.oauth.resource; },
    "This server's resource URI (the tokens' audience).");
  k.live = true;
  k.strings(
    "auth.oauth.authorizationServers", [](auto& c) -> auto& { return c.auth.oauth.authorization_servers; },
    "Authorization servers named in the protected resource metadata; empty: the issuer.");
  k.string(
    "auth.oauth.jwksFile", [](auto& c) -> auto& { return c.auth.oauth.jwks_file; },
    "The issuer's signing keys (a JWKS file).");
  k.seconds(
    "auth.oauth.clockSkewSeconds", [](auto& c) -> auto& { return c.auth.oauth.clock_skew; }, 0, 600,
    "Clock difference tolerated in exp and nbf.");
  k.strings(
    "auth.oauth.scopesSupported", [](auto& c) -> auto& { return c.auth.oauth.scopes_supported; },
    "Scopes named in the protected resource metadata.");
  k.section("auth.oauth.requiredScopes", show_required_scopes, read_required_scopes,
            "Scopes a caller's token needs, by pattern (* matches any run) over the names clients see: "
            "{\"tools\": {\"crm__*\": [\"crm.read\"]}, \"prompts\": {...}, \"resources\": {URI pattern: [...]}}. "
            "Every matching pattern's scopes are needed; lists show only what the token may use, and a call "
            "without them gets HTTP 403 insufficient_scope.");
  k.described("auth.oauth.requiredScopes.tools", setting_type::section, "Tool name pattern -> scopes.");
  k.described("auth.oauth.requiredScopes.prompts", setting_type::section, "Prompt name pattern -> scopes.");
  k.described("auth.oauth.requiredScopes.resources", setting_type::section,
              "Resource URI pattern -> scopes (reads, and the resources and templates listed).");
  k.section("auth.oauth.claimScopes", show_claim_scopes, read_claim_scopes,
            "Scopes a token has besides its scope claim when a claim has a value: {\"groups=admins\": "
            "[\"crm.write\"]} grants crm.write to a token whose groups claim is \"admins\" or an array holding "
            "it.");

  k.choice(
     "errors.mode", {"production", "development"}, "must be \"production\" or \"development\"",
     [](const config& c) { return c.error_mode == mcp::error_mode::development ? "development" : "production"; },
     [](config& c, const std::string& w) {
       c.error_mode = w == "development" ? mcp::error_mode::development : mcp::error_mode::production;
     },
     "Whether clients see internal error details.")
    .with_switch("--dev", "development");
  k.live = false;

  k.string(
    "audit.file", [](auto& c) -> auto& { return c.audit.file; }, "The append-only audit log; empty: none.");
  k.integer(
    "audit.maxBytes", [](auto& c) -> auto& { return c.audit.max_bytes; }, 1024, 1LL << 40,
    "Size at which the audit log is rotated.");
  k.integer(
    "audit.maxFiles", [](auto& c) -> auto& { return c.audit.max_files; }, 1, 1000, "Rotated audit logs kept.");

  k.boolean(
     "stdio.enabled", [](auto& c) -> auto& { return c.stdio; }, "Serve one client on stdin/stdout.")
    .with_switch("--stdio", "true");

  k.seconds(
    "sessions.idleTimeoutSeconds", [](auto& c) -> auto& { return c.runtime.session_idle_timeout; }, 1, 7 * 86400,
    "A session unused this long ends.");
  k.integer(
    "sessions.replayEvents", [](auto& c) -> auto& { return c.runtime.replay_events; }, 0, 100000,
    "Events per stream kept for Last-Event-ID replay.");
  k.live = true;
  k.string(
     "sessions.stateKeyFile", [](auto& c) -> auto& { return c.runtime.state_key_file; },
     "File holding the key that seals requestState, the same on every instance (at least 32 bytes); empty: a key "
     "the fleet shares through Redis, or this process's own.")
    .with_env("BULWARK_STATE_KEY_FILE");
  k.string(
    "sessions.previousStateKeyFile", [](auto& c) -> auto& { return c.runtime.previous_state_key_file; },
    "File holding the key used before a rotation: states it sealed still open.");
  k.live = false;
  k.integer(
    "sessions.pageSize", [](auto& c) -> auto& { return c.runtime.page_size; }, 1, 10000,
    "Entries per page of tools/list and the other lists.");
  k.integer(
    "sessions.listTtlMs", [](auto& c) -> auto& { return c.runtime.list_ttl_ms; }, 0, 86400000LL,
    "ttlMs given with lists (2026-07-28).");
  k.integer(
    "sessions.maxPerIdentity", [](auto& c) -> auto& { return c.runtime.max_sessions_per_identity; }, 1, 1000000,
    "Sessions one caller may hold.");
  k.integer(
    "sessions.max", [](auto& c) -> auto& { return c.runtime.max_sessions; }, 1, 10000000,
    "Sessions of all callers at once.");
  k.integer(
    "sessions.maxConcurrentRequests", [](auto& c) -> auto& { return c.runtime.max_concurrent_requests; }, 1, 100000,
    "Requests of one session in progress at once.");
  k.integer(
    "sessions.maxStreams", [](auto& c) -> auto& { return c.runtime.max_streams; }, 1, 1000,
    "Open event streams of one session.");
  k.live = true;
  k.integer(
    "tasks.ttlMs", [](auto& c) -> auto& { return c.runtime.task_ttl_ms; }, 1000, 604800000LL,
    "How long a task (a tools/call answered with a CreateTaskResult, 2026-07-28 tasks extension) is kept from its "
    "creation; then it is dropped, and one still running is stopped.");
  k.integer(
    "tasks.pollIntervalMs", [](auto& c) -> auto& { return c.runtime.task_poll_interval_ms; }, 10, 600000,
    "pollIntervalMs suggested to clients polling tasks/get.");
  k.integer(
    "tasks.maxPerIdentity", [](auto& c) -> auto& { return c.runtime.max_tasks_per_identity; }, 1, 100000,
    "Tasks one caller may hold; the oldest finished ones make room for new ones, and past that a new task is "
    "refused with -32008 (HTTP 429).");
  k.live = false;

  k.live = true;
  k.seconds(
    "shutdown.drainSeconds", [](auto& c) -> auto& { return c.drain; }, 0, 3600,
    "How long a graceful shutdown lets calls in flight finish.");
  k.millis(
    "shutdown.readyGraceMs", [](auto& c) -> auto& { return c.ready_grace; }, 0, 600000,
    "After SIGTERM, how long /ready answers 503 while everything is still served, before the drain begins "
    "(set it above the balancer's health-check interval).");
  k.live = false;

  k.integer(
    "supervision.maxRestarts", [](auto& c) -> auto& { return c.runtime.max_restarts; }, 0, 1000,
    "Restarts of an actor within the window before its supervisor gives up.");
  k.seconds(
    "supervision.windowSeconds", [](auto& c) -> auto& { return c.runtime.restart_window; }, 1, 3600,
    "Window of maxRestarts.");
  k.millis(
    "supervision.backoffInitialMs", [](auto& c) -> auto& { return c.runtime.restart_backoff_initial; }, 0, 60000,
    "Delay before the first restart; doubled for each next one.");
  k.millis(
    "supervision.backoffMaxMs", [](auto& c) -> auto& { return c.runtime.restart_backoff_max; }, 0, 600000,
    "Longest delay before a restart.");

  k.choice(
     "actors.scheduler", {"fused", "stealing"}, "-", [](const config& c) { return c.scheduler; },
     [](config& c, const std::string& w) { c.scheduler = w; },
     "fused runs the HTTP I/O on the CAF workers; stealing is CAF's scheduler beside I/O threads.")
    .refusal = "expected \"fused\" or \"stealing\", got \"{value}\"";
  k.integer(
     "actors.workers", [](auto& c) -> auto& { return c.workers; }, 1, 64, "CAF scheduler threads.")
    .with_env("BULWARK_WORKERS")
    .with_flag("--workers", "N");
  k.integer(
    "actors.spinMicros", [](auto& c) -> auto& { return c.spin_micros; }, 0, 10000,
    "Fused scheduler: how long an idle worker polls before it sleeps.");
  k.integer(
    "actors.aggressivePollAttempts", [](auto& c) -> auto& { return c.aggressive_poll_attempts; }, 0, 100000,
    "Stealing scheduler: polls before a worker backs off.");
  k.integer(
    "actors.moderatePollAttempts", [](auto& c) -> auto& { return c.moderate_poll_attempts; }, 0, 100000,
    "Stealing scheduler: polls with short sleeps before a worker sleeps long.");

  k.live = true;
  k.choice(
    "gateway.prefix", {"conditional", "always", "never"}, prefix_words,
    [](const config& c) { return prefix_name(c.gateway.prefix); },
    [](config& c, const std::string& w) { c.gateway.prefix = prefix_of(w); },
    "Tool names get their service's name in front: only on a clash, always, or never.");
  k.string(
     "gateway.separator", [](auto& c) -> auto& { return c.gateway.separator; },
     "Between a service's name and a tool's (1 to 8 of letters, digits, _ - . /).")
    .check = check_separator_value;
  k.live = false;
  k.integer(
    "gateway.childMaxRestarts", [](auto& c) -> auto& { return c.gateway.child_max_restarts; }, 0, 1000,
    "Restarts of a stdio server within the window before it is given up.");
  k.live = true;
  k.boolean(
    "gateway.gatewayTools", [](auto& c) -> auto& { return c.gateway.gateway_tools; },
    "Offer list_servers, get_server_tools and execute_tool.");
  k.section(
    "gateway.policy", [](const config& c) { return show_policy(c.gateway.policy); },
    [](config& c, const value& v, const std::string& path, errors_t&) { read_policy(v, path, c.gateway.policy); },
    "Which server:tool patterns every client may call (allow, deny; deny wins).");
  k.described("gateway.policy.allow", setting_type::string_list,
              "Patterns server:tool (* matches any run); non-empty: only matches are admitted.");
  k.described("gateway.policy.deny", setting_type::string_list, "Patterns server:tool refused.");
  k.section(
    "gateway.agents",
    [](const config& c) {
      value out(json::object{});
      for (auto& [agent, p] : c.gateway.agents)
        out.set(agent, show_policy(p));
      return out;
    },
    [](config& c, const value& v, const std::string& path, errors_t& errors) {
      read_map(v, path, "must be an object keyed by client name", errors,
               [&](const std::string& agent, const value& p, const std::string& here) {
                 read_policy(p, here, c.gateway.agents[agent]);
               });
    },
    "A policy per client (its clientInfo.name) that replaces gateway.policy for it.");
  k.described("gateway.agents.<client>.allow", setting_type::string_list, "As gateway.policy.allow.");
  k.described("gateway.agents.<client>.deny", setting_type::string_list, "As gateway.policy.deny.");
  k.live = false;
  k.seconds(
    "gateway.childRestartWindowSeconds", [](auto& c) -> auto& { return c.gateway.child_restart_window; }, 1, 86400,
    "Window of childMaxRestarts.");
  k.live = true;
  k.millis(
    "gateway.taskAfterMs", [](auto& c) -> auto& { return c.gateway.task_after; }, 0, 86400000,
    "A call of a service's tool from a client that declared the tasks extension (2026-07-28) becomes a task of the "
    "gateway's once it has gone on this long, and the call goes on: the client polls tasks/get for its result. 0: "
    "never.");
  k.live = false;
  k.choice(
    "gateway.pinning.mode", {"off", "keep", "hide"}, "must be \"off\", \"keep\" or \"hide\"",
    [](const config& c) { return c.gateway.pinning; }, [](config& c, const std::string& w) { c.gateway.pinning = w; },
    "Tool-definition pinning: a service's tool definition (name, description, input schema, annotations) as first "
    "seen is approved; a later change is held until an operator approves it (POST /admin/api/tools/approve), "
    "keeping the approved definition served, or hiding the tool. Off: every change is served at once.");
  k.string(
    "gateway.pinning.file", [](auto& c) -> auto& { return c.gateway.pinning_file; },
    "Where the pins are kept across restarts (JSON, written by Bulwark); needed with a pinning mode unless redis.url "
    "is set. With Redis the fleet's pins are kept there (one hash, `pins`): every instance serves what was approved "
    "and holds what changed, and an approval through any instance holds for all; the file is then this instance's "
    "copy, read when Redis cannot be reached at start.");
  k.rule("gateway.pinning", [](const config& c, const std::string& path, errors_t&) {
    // A file that is there must be Bulwark's: a broken one would approve
    // every tool anew.
    if (c.gateway.pinning != "off" && !c.gateway.pinning_file.empty()) {
      std::ifstream in(c.gateway.pinning_file, std::ios::binary);
      if (in) {
        std::ostringstream text;
        text << in.rdbuf();
        value doc;
        json::parse_error err;
        if (!json::parse(text.str(), doc, err) || !doc.is_object() || !doc["services"].is_object())
          bad(path + ".file", "'" + c.gateway.pinning_file + "' is no pin book (written by Bulwark)");
      }
    }
  });

  k.live = true;
  k.section("mcpServers", show_servers, read_servers,
            "Downstream MCP servers by name (1 to 64 of letters, digits, _ and -): how to reach each.");
  k.section("services", show_services, read_services,
            "How to treat each server of mcpServers: deadlines, retries, breaker, cache, fallback.");

  k.section(
    "rateLimits.tiers",
    [](const config& c) {
      value out(json::object{});
      for (auto& [name, w] : c.runtime.ops.limits.tiers)
        out.set(name, show_windows(w));
      return out;
    },
    [](config& c, const value& v, const std::string& path, errors_t& errors) {
      read_map(v, path, "must be an object keyed by tier name", errors,
               [&](const std::string& name, const value& w, const std::string& here) {
                 c.runtime.ops.limits.tiers[name] = read_windows(w, here);
               });
    },
    "Windows per caller by tier name; a tier given replaces that tier, the others stay.");
  for (auto& [key, per] : windows)
    k.described(std::string("rateLimits.tiers.<tier>.") + key, setting_type::integer,
                "Calls per window (1..1000000000).");
  k.section(
    "rateLimits.global", [](const config& c) { return show_windows(c.runtime.ops.limits.global); },
    [](config& c, const value& v, const std::string& path, errors_t&) {
      c.runtime.ops.limits.global = read_windows(v, path);
    },
    "Windows shared by every call through the gateway; none by default.");
  for (auto& [key, per] : windows)
    k.described(std::string("rateLimits.global.") + key, setting_type::integer, "Calls per window (1..1000000000).");
  k.section(
    "rateLimits.keys",
    [](const config& c) {
      value out(json::object{});
      for (auto& [hash, ks] : c.runtime.ops.keys)
        out.set(hash, value::make_object({{"tier", ks.tier}, {"priority", ks.prio ? to_string(*ks.prio) : ""}}));
      return out;
    },
    [](config& c, const value& v, const std::string& path, errors_t& errors) {
      read_map(v, path, "must be an object keyed by the SHA-256 (hex) of each API key", errors,
               [&](const std::string& hash, const value& entry, const std::string& here) {
                 if (!is_sha256_hex(hash))
                   bad(here, "a key is named by the lower-case hex SHA-256 of the key (64 characters), never the key "
                             "itself");
                 if (!entry.is_object())
                   bad(here, "must be an object");
                 key_settings ks;
                 for (auto& [key, x] : entry.as_object()) {
                   if (key != "tier" && key != "priority")
                     bad(here + "." + key, "unknown key");
                   if (!x.is_string())
                     bad(here + "." + key, "must be a string");
                 }
                 if (auto* t = entry.find("tier"))
                   ks.tier = t->as_string();
                 if (auto* p = entry.find("priority"); p && !p->as_string().empty())
                   ks.prio = priority_of(here + ".priority", p->as_string());
                 c.runtime.ops.keys[hash] = ks;
               });
    },
    "Settings per API key, named by the lower-case hex SHA-256 of the key.");
  k.described("rateLimits.keys.<sha256>.tier", setting_type::string, "The key's tier.");
  k.described("rateLimits.keys.<sha256>.priority", setting_type::string,
              "Default queue priority of the key's calls: critical, high, normal or low.");
  k.string(
    "rateLimits.defaultTier", [](auto& c) -> auto& { return c.runtime.ops.default_tier; },
    "Tier of API keys without one.");
  k.string(
    "rateLimits.anonymousTier", [](auto& c) -> auto& { return c.runtime.ops.anonymous_tier; },
    "Tier of unauthenticated callers; empty: unlimited.");
  k.choice(
    "rateLimits.onLimit", {"refuse", "queue"}, "must be \"refuse\" or \"queue\"",
    [](const config& c) { return c.runtime.ops.queue_on_limit ? "queue" : "refuse"; },
    [](config& c, const std::string& w) { c.runtime.ops.queue_on_limit = w == "queue"; },
    "A call over its limit is refused at once or waits for its turn.");
  k.millis(
    "rateLimits.maxQueueWaitMs", [](auto& c) -> auto& { return c.runtime.ops.max_limit_wait; }, 1, 3600000,
    "Longest wait of a call over its limit (onLimit \"queue\").");
  k.integer(
    "rateLimits.maxTrackedCallers", [](auto& c) -> auto& { return c.runtime.ops.max_tracked_callers; }, 1, 100000000,
    "Callers whose buckets are kept at once.");

  k.integer(
    "queue.capacity", [](auto& c) -> auto& { return c.runtime.ops.queue.capacity; }, 1, 10000000,
    "Calls waiting at most; beyond it lower-priority work is shed.");
  k.millis(
    "queue.agingMs", [](auto& c) -> auto& { return c.runtime.ops.queue.aging; }, 0, 3600000,
    "A waiting call rises one priority level per this much waiting; 0: no aging.");
  k.integer(
    "queue.maxConcurrentPerService", [](auto& c) -> auto& { return c.runtime.ops.max_concurrent_per_service; }, 1,
    100000, "Calls to one service in progress at once.");
  k.section(
    "queue.toolPriorities",
    [](const config& c) {
      value out(json::object{});
      for (auto& [tool, p] : c.runtime.ops.tool_priorities)
        out.set(tool, to_string(p));
      return out;
    },
    [](config& c, const value& v, const std::string& path, errors_t& errors) {
      read_map(v, path, "must be an object of strings", errors,
               [&](const std::string& tool, const value& p, const std::string& here) {
                 if (!p.is_string())
                   bad(here, "must be a string");
                 c.runtime.ops.tool_priorities[tool] = priority_of(here, p.as_string());
               });
    },
    "Queue priority by tool name.");
  k.described("queue.toolPriorities.<tool>", setting_type::string, "critical, high, normal or low.");

  k.integer(
    "cache.maxEntries", [](auto& c) -> auto& { return c.runtime.ops.cache_entries; }, 1, 100000000,
    "Results the cache holds at most.");
  k.integer(
    "cache.maxBytes", [](auto& c) -> auto& { return c.runtime.ops.cache_bytes; }, 1024, 1LL << 40,
    "Bytes the cache holds at most.");

  k.choice(
    "health.readiness", {"services", "core"}, "must be \"services\" or \"core\"",
    [](const config& c) { return c.runtime.ops.health.ready_waits_for_services ? "services" : "core"; },
    [](config& c, const std::string& w) { c.runtime.ops.health.ready_waits_for_services = w == "services"; },
    "When /ready answers 200: \"services\" once every downstream service is ready or has failed to start, "
    "\"core\" as soon as Bulwark's own actors run.");
  k.millis(
    "health.intervalMs", [](auto& c) -> auto& { return c.runtime.ops.health.interval; }, 50, 600000,
    "How often health is judged.");
  k.millis(
    "health.historyStepMs", [](auto& c) -> auto& { return c.runtime.ops.health.history_step; }, 100, 60000,
    "One point of the admin page's charts (15 minutes are kept; a point is taken at the first check after a "
    "step has passed).");
  k.integer(
    "health.enterChecks", [](auto& c) -> auto& { return c.runtime.ops.health.enter_checks; }, 1, 1000,
    "Bad checks in a row that enter degraded mode.");
  k.millis(
    "health.exitAfterMs", [](auto& c) -> auto& { return c.runtime.ops.health.exit_after; }, 0, 86400000,
    "Good health this long leaves degraded mode.");
  k.seconds(
    "health.stormWindowSeconds", [](auto& c) -> auto& { return c.runtime.ops.health.storm_window; }, 1, 86400,
    "Window of restartStorm.");
  k.integer(
    "health.restartStorm", [](auto& c) -> auto& { return c.runtime.ops.health.thresholds.restart_storm; }, 0, 1000000,
    "Actor restarts within the storm window that mean degraded.");
  k.number(
    "health.queueFill", [](auto& c) -> auto& { return c.runtime.ops.health.thresholds.queue_fill; }, 0, 1,
    "A queue fuller than this share means degraded.");
  k.number(
    "health.degradedBudgetScale", [](auto& c) -> auto& { return c.runtime.ops.health.degraded_budget_scale; }, 0.01, 1,
    "Share of the rate budgets granted in degraded mode.");
  k.live = false;

  k.string(
     "admin.tokenSha256", [](auto& c) -> auto& { return c.runtime.ops.admin_token_sha256; },
     "Lower-case hex SHA-256 of the admin API's token; unset: the admin API refuses every action.")
    .with_token_env("BULWARK_ADMIN_TOKEN")
    .is_secret();
  k.keys.back().check = [](const value& v, const std::string& path, errors_t&) { check_token_hash("admin", v, path); };
  k.integer(
    "admin.port", [](auto& c) -> auto& { return c.admin_port; }, -1, 65535,
    "Port of the admin API and console page on their own listener; -1: on the MCP listener, 0: a free one.");
  k.string(
    "admin.address", [](auto& c) -> auto& { return c.admin_address; }, "Bind address of the admin listener.");

  k.string(
     "metrics.tokenSha256", [](auto& c) -> auto& { return c.runtime.ops.metrics_token_sha256; },
     "Lower-case hex SHA-256 of the token /metrics demands; unset: /metrics is open.")
    .with_token_env("BULWARK_METRICS_TOKEN")
    .is_secret();
  k.keys.back().check = [](const value& v, const std::string& path, errors_t&) {
    check_token_hash("metrics", v, path);
  };
  k.choice(
    "metrics.listener", {"main", "admin"}, "must be \"main\" or \"admin\"",
    [](const config& c) { return c.runtime.ops.metrics_on_admin_only ? "admin" : "main"; },
    [](config& c, const std::string& w) { c.runtime.ops.metrics_on_admin_only = w == "admin"; },
    "Serve /metrics on the MCP listener or only on the admin listener.");
  k.rule("metrics", [](const config& c, const std::string& path, errors_t&) {
    if (c.runtime.ops.metrics_on_admin_only && c.admin_port < 0)
      bad(path + ".listener", "is \"admin\", but there is no admin listener (set admin.port)");
  });

  k.live = true;
  k.section(
     "alerts.rules", show_alert_rules, read_alert_rules,
     "Settings by rule name (error_rate, upstream_budget, cache_hit_rate, p95_latency, breaker_open, tool_changed, "
     "queue_fill).")
    .not_in_example();
  k.described("alerts.rules.<rule>.enabled", setting_type::boolean, "Whether the rule fires.");
  k.described("alerts.rules.<rule>.threshold", setting_type::number,
              "Value the rule compares with (a share between 0 and 1 for rates; seconds for p95_latency).");
  k.described("alerts.rules.<rule>.minCount", setting_type::integer,
              "Events in the window before a rate counts (error_rate, cache_hit_rate).");
  k.described("alerts.rules.<rule>.cooldownSeconds", setting_type::number,
              "Quiet time per subject after the rule fired (0..31536000).");
  k.string(
    "alerts.webhook.url", [](auto& c) -> auto& { return c.runtime.ops.webhook.url; },
    "Where alerts are POSTed (http:// or https://); empty: no webhook.");
  k.string(
    "alerts.webhook.tls.caFile", [](auto& c) -> auto& { return c.runtime.ops.webhook.tls.ca_file; },
    "Certificates to trust for an https:// webhook instead of the system's.");
  k.string(
    "alerts.webhook.tls.certFile", [](auto& c) -> auto& { return c.runtime.ops.webhook.tls.cert_file; },
    "Client certificate presented to the webhook (with keyFile).");
  k.string(
    "alerts.webhook.tls.keyFile", [](auto& c) -> auto& { return c.runtime.ops.webhook.tls.key_file; },
    "Private key of the client certificate.");
  auto& webhook_headers = k.pairs(
    "alerts.webhook.headers", [](auto& c) -> auto& { return c.runtime.ops.webhook.headers; },
    "Headers sent with each alert (credentials go here); a value may be ${env:NAME} or ${file:PATH} (a file is "
    "read again when it changes, a variable on reload).");
  webhook_headers.is_secret();
  webhook_headers.check = check_secret_values;
  k.millis(
    "alerts.webhook.timeoutMs", [](auto& c) -> auto& { return c.runtime.ops.webhook.timeout; }, 1, 600000,
    "Deadline of one webhook request.");
  k.integer(
    "alerts.webhook.attempts", [](auto& c) -> auto& { return c.runtime.ops.webhook.attempts; }, 1, 20,
    "Tries of one alert, the first included.");
  k.millis(
    "alerts.webhook.baseDelayMs", [](auto& c) -> auto& { return c.runtime.ops.webhook.base_delay; }, 0, 600000,
    "Delay before the first retry; doubled for each next one.");
  k.rule("alerts.webhook", [](const config& c, const std::string& path, errors_t&) {
    auto& w = c.runtime.ops.webhook;
    check_tls(path + ".tls", w.tls);
    if (w.url.empty() && w.tls.empty())
      return;
    check_http_url(path + ".url", w.url);
    if (!w.tls.empty() && !is_https(w.url))
      bad(path + ".tls", "applies to https:// URLs only");
  });
  auto& admins = k.strings(
    "alerts.adminKeys", [](auto& c) -> auto& { return c.runtime.ops.admin_identities; },
    "Lower-case hex SHA-256 of the API keys that hear alerts as MCP notifications.");
  admins.get = [](const config& c) {
    value out(json::array{});
    for (auto& id : c.runtime.ops.admin_identities)
      out.push_back(id.rfind("key:", 0) == 0 ? id.substr(4) : id);
    return out;
  };
  admins.set = [](config& c, const value& v) {
    c.runtime.ops.admin_identities.clear();
    for (auto& k : strings_of(v))
      c.runtime.ops.admin_identities.push_back("key:" + k);
  };
  admins.check = [](const value& v, const std::string& path, errors_t&) {
    for (auto& x : v.as_array())
      if (!is_sha256_hex(x.as_string()))
        bad(path, "each entry is the lower-case hex SHA-256 of an API key");
  };

  k.string(
    "telemetry.otlp.endpoint", [](auto& c) -> auto& { return c.runtime.ops.telemetry.endpoint; },
    "OTLP/HTTP collector base URL; spans are POSTed as JSON to {endpoint}/v1/traces. Empty: no export.");
  auto& telemetry_headers = k.pairs(
    "telemetry.otlp.headers", [](auto& c) -> auto& { return c.runtime.ops.telemetry.headers; },
    "Headers sent with each export; a value may be ${env:NAME} or ${file:PATH} (a file is read again when it "
    "changes, a variable on reload).");
  telemetry_headers.is_secret();
  telemetry_headers.check = check_secret_values;
  k.millis(
    "telemetry.otlp.timeoutMs", [](auto& c) -> auto& { return c.runtime.ops.telemetry.timeout; }, 1, 600000,
    "Deadline of one export request.");
  k.millis(
    "telemetry.otlp.intervalMs", [](auto& c) -> auto& { return c.runtime.ops.telemetry.interval; }, 10, 600000,
    "How often waiting spans are exported (sooner when a batch is full).");
  k.integer(
    "telemetry.otlp.maxQueueSpans", [](auto& c) -> auto& { return c.runtime.ops.telemetry.max_queue; }, 1, 10000000,
    "Spans waiting for export at most; more are dropped and counted.");
  k.integer(
    "telemetry.otlp.maxBatchSpans", [](auto& c) -> auto& { return c.runtime.ops.telemetry.max_batch; }, 1, 100000,
    "Spans per export request at most.");
  k.number(
    "telemetry.sampleRatio", [](auto& c) -> auto& { return c.runtime.ops.telemetry.sample_ratio; }, 0, 1,
    "Share of new traces recorded (a caller's sampled flag decides for its trace).");
  k.string(
    "telemetry.serviceName", [](auto& c) -> auto& { return c.runtime.ops.telemetry.service_name; },
    "service.name of the exported spans.");
  k.rule("telemetry.otlp", [](const config& c, const std::string& path, errors_t&) {
    auto& t = c.runtime.ops.telemetry;
    if (!t.endpoint.empty())
      check_http_url(path + ".endpoint", t.endpoint);
  });
  k.live = false;

  auto& url = k.string(
    "redis.url", [](auto& c) -> auto& { return c.runtime.ops.redis.url; },
    "Share state with other instances through Redis (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], or a "
    "${env:NAME} or ${file:PATH} reference to one: a file's user and password are read again for each new "
    "connection); empty: no Redis.");
  url.with_env("BULWARK_REDIS").with_flag("--redis", "URL");
  url.get = [](const config& c) { return value(without_password(c.runtime.ops.redis.url)); };
  url.check = [](const value& v, const std::string& path, errors_t&) { check_redis_url(path, v.as_string()); };
  k.string(
    "redis.keyPrefix", [](auto& c) -> auto& { return c.runtime.ops.redis.key_prefix; },
    "Prefix of every Redis key Bulwark writes.");
  k.millis(
    "redis.connectTimeoutMs", [](auto& c) -> auto& { return c.runtime.ops.redis.connect_timeout; }, 1, 60000,
    "Deadline of a connection to Redis.");
  k.millis(
    "redis.commandTimeoutMs", [](auto& c) -> auto& { return c.runtime.ops.redis.command_timeout; }, 1, 60000,
    "Deadline of one Redis command.");
  k.millis(
    "redis.retryMs", [](auto& c) -> auto& { return c.runtime.ops.redis.retry_interval; }, 10, 600000,
    "Delay before Redis is tried again after a failure.");
  k.seconds(
    "redis.sessionTtlSeconds", [](auto& c) -> auto& { return c.runtime.ops.redis.session_ttl; }, 0, 30 * 86400,
    "Lifetime of a shared session record; 0: sessions.idleTimeoutSeconds.");
  k.millis(
    "redis.cacheMaxTtlMs", [](auto& c) -> auto& { return c.runtime.ops.redis.cache_max_ttl; }, 1000, 30 * 86400000LL,
    "Longest lifetime of a shared cache entry.");
  k.millis(
    "redis.breakerTtlMs", [](auto& c) -> auto& { return c.runtime.ops.redis.breaker_ttl; }, 1000, 86400000LL,
    "Lifetime of a shared breaker state.");

  k.boolean(
     "tools.builtin", [](auto& c) -> auto& { return c.builtin_tools; }, "Register the built-in tools.")
    .with_switch("--no-builtin-tools", "false");
  k.boolean(
     "tools.conformanceFixtures", [](auto& c) -> auto& { return c.fixtures; },
     "Register the MCP conformance-suite fixtures.")
    .with_switch("--fixtures", "true");
  k.boolean(
     "tools.faultTools", [](auto& c) -> auto& { return c.fault_tools; },
     "Register tools that fail on purpose (gateway tests).")
    .with_switch("--fault-tools", "true");
  k.boolean(
    "tools.validateArguments", [](auto& c) -> auto& { return c.runtime.validate_arguments; },
    "Check tools/call arguments against the tool's input schema.");

  k.live = true;
  k.choice(
     "log.level", {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}, level_words(),
     [](const config& c) { return std::string(to_string(c.log)); },
     [](config& c, const std::string& w) { c.log = *parse_log_level(w); }, "Least severity logged.")
    .with_env("BULWARK_LOG_LEVEL")
    .with_flag("--log-level", "LEVEL");
  k.string(
    "log.access", [](auto& c) -> auto& { return c.access.target; },
    "Access log, one JSON line per answered request: \"stderr\", a file path, or empty: none.");
  k.number(
    "log.accessSampleRatio", [](auto& c) -> auto& { return c.access.sample_ratio; }, 0, 1,
    "Share of successful requests the access log writes (errors always).");
  k.strings(
    "log.redactKeys", [](auto& c) -> auto& { return c.redact_keys; },
    "Field names whose values the log hides, besides the built-in ones.");
  k.strings(
     "log.redactPatterns", [](auto& c) -> auto& { return c.redact_patterns; },
     "Regular expressions (ECMAScript) of text the log hides.")
    .check = [](const value& v, const std::string& path, errors_t& errors) {
    auto& xs = v.as_array();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      try {
        std::regex compiled(xs[i].as_string(), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        errors.push_back({path + "[" + std::to_string(i) + "]", std::string("does not compile: ") + e.what()});
      }
    }
  };
  return k;
}

const key_table<config>& config_settings_table() {
  static const auto table = config_keys().done();
  return table;
}

std::string top_of(const std::string& path) {
  return path.substr(0, path.find('.'));
}

} // namespace

const std::vector<setting<config>>& config_settings() {
  return config_settings_table().keys;
}

std::vector<const setting_info*> all_settings() {
  std::vector<const setting_info*> flat;
  for (auto& s : config_settings())
    flat.push_back(&s);
  for (auto& s : server_settings())
    flat.push_back(&s);
  for (auto& s : service_settings_keys().keys)
    flat.push_back(&s);
  std::vector<std::string> order;
  for (auto* s : flat)
    if (std::find(order.begin(), order.end(), top_of(s->path)) == order.end())
      order.push_back(top_of(s->path));
  std::vector<const setting_info*> out;
  for (auto& top : order)
    for (auto* s : flat)
      if (top_of(s->path) == top)
        out.push_back(s);
  return out;
}

void read_settings(config& cfg, const value& root, errors_t& errors) {
  auto& table = config_settings_table();
  read_object(table.keys, table.rules, "", root, "$", cfg, errors);
  if (!errors.empty())
    return;
  auto& ops = cfg.runtime.ops;
  auto check_tier = [&](const std::string& path, const std::string& tier) {
    if (!tier.empty() && !ops.limits.tiers.count(tier))
      errors.push_back({path, "no tier named '" + tier + "' in rateLimits.tiers"});
  };
  check_tier("$.rateLimits.defaultTier", ops.default_tier);
  check_tier("$.rateLimits.anonymousTier", ops.anonymous_tier);
  for (auto& [hash, k] : ops.keys)
    check_tier("$.rateLimits.keys." + hash + ".tier", k.tier);
  // Scope challenges name the protected resource metadata.
  ops.scopes.metadata_url = cfg.auth.mode == auth_mode::oauth ? resource_metadata_url(cfg.auth.oauth) : std::string();
  if (!ops.scopes.empty() && cfg.auth.mode != auth_mode::oauth)
    errors.push_back({"$.auth.oauth.requiredScopes", "needs auth.mode \"oauth\": scopes come from OAuth tokens"});
  // Pins are kept in a file or, for a fleet, in Redis.
  if (cfg.gateway.pinning != "off" && cfg.gateway.pinning_file.empty() && ops.redis.url.empty())
    errors.push_back({"$.gateway.pinning.file",
                      "is needed with mode \"" + cfg.gateway.pinning + "\" and no redis.url: the pins are kept there"});
  // A service budget is the gateway's `ratePerMinute`.
  for (auto& s : cfg.gateway.services)
    if (s.settings.rate_per_minute > 0)
      ops.limits.services[s.name] = {rate_limit{s.settings.rate_per_minute, std::chrono::minutes(1)}};
}

void set_from_text(config& cfg, const setting<config>& s, const std::string& text, const std::string& label) {
  value v;
  errors_t errors;
  switch (s.type) {
    case setting_type::boolean:
      if (text != "true" && text != "false")
        bad(label, "must be true or false");
      v = value(text == "true");
      break;
    case setting_type::integer:
    case setting_type::seconds:
    case setting_type::milliseconds: {
      char* end = nullptr;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || n < s.lo || n > s.hi)
        bad(label, "must be an integer " + s.range());
      v = value(n);
      break;
    }
    case setting_type::number: {
      char* end = nullptr;
      double n = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || n < s.lo || n > s.hi)
        bad(label, "must be a number " + s.range());
      v = value(n);
      break;
    }
    default:
      v = value(text);
  }
  if (!fits(s, v, label, errors))
    throw config_error(errors);
  if (s.check)
    s.check(v, label, errors);
  if (!errors.empty())
    throw config_error(errors);
  s.set(cfg, v);
}

value settings_values(const config& cfg) {
  return values_of(config_settings(), "", cfg);
}

// -- the reference -------------------------------------------------------------------------

namespace {

std::string cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else
      out += c;
  }
  return out;
}

std::string default_text(const setting_info& s) {
  if (s.default_value.is_null())
    return s.described ? "" : "unset";
  auto text = json::dump(s.default_value);
  if (s.type == setting_type::section && text.size() > 60)
    return "see `--print-config`";
  return "`" + text + "`";
}

std::string flag_text(const setting_info& s) {
  if (s.flag.empty())
    return {};
  if (s.flag_arg.empty())
    return "`" + s.flag + "` (" + s.flag_value + ")";
  return "`" + s.flag + " " + s.flag_arg + "`";
}

/// Objects one key a line, two spaces deeper each level; the rest compact.
void write_pretty(std::string& out, const value& v, int depth) {
  if (!v.is_object() || v.size() == 0) {
    json::write(out, v);
    return;
  }
  out += "{\n";
  std::size_t i = 0;
  for (auto& [k, x] : v.as_object()) {
    out.append(static_cast<std::size_t>(depth + 1) * 2, ' ');
    json::write_string(out, k);
    out += ": ";
    write_pretty(out, x, depth + 1);
    out += ++i < v.size() ? ",\n" : "\n";
  }
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
  out += "}";
}

} // namespace

std::string settings_reference_markdown() {
  std::string out =
    "# Configuration reference\n\n"
    "<!-- Generated from config/settings_table.cpp by `bulwark --print-config-reference markdown`; "
    "a unit test fails when it is stale. -->\n\n"
    "Bulwark starts from the defaults below, then reads a JSON file (`--config FILE` or `BULWARK_CONFIG`), "
    "then the `BULWARK_*` environment variables, then the command line. Unknown keys and bad values are "
    "refused with their path; `bulwark --check-config FILE` prints every error of a file, and "
    "`bulwark --print-config` the effective configuration (secrets redacted). "
    "`config/examples/default.json` lists every key with its default.\n\n"
    "A running server applies a change of a *live* key when it reloads its file (SIGHUP, the admin API); "
    "a reload that changes a *restart* key is refused whole. `<name>` and the like stand for names you "
    "choose.\n";
  std::string top;
  for (auto* s : all_settings()) {
    if (top_of(s->path) != top) {
      top = top_of(s->path);
      out += "\n## `" + top
             + "`\n\n| key | type | default | bounds | env | flag | reload | help |\n"
               "|---|---|---|---|---|---|---|---|\n";
    }
    out += "| `" + s->path + "` | " + cell(s->type_name()) + " | " + cell(default_text(*s)) + " | " + s->bounds()
           + " | " + (s->env.empty() ? "" : "`" + s->env + "`" + (s->env_hashed ? " (the token)" : "")) + " | "
           + flag_text(*s) + " | " + (s->live ? "live" : "restart") + " | " + cell(s->help) + " |\n";
  }
  return out;
}

std::string settings_reference_json() {
  value doc(json::object{});
  for (auto& s : config_settings())
    if (s.example && !s.default_value.is_null())
      put(doc, s.path, s.default_value);
  std::string out;
  write_pretty(out, doc, 0);
  return out + "\n";
}

} // namespace bulwark
