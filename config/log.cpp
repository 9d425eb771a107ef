#include "config/log.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <regex>
#include <stdexcept>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "messages/text.hpp"

namespace bulwark::log {

namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("bulwark", sink);
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

spdlog::logger& logger() {
  static auto instance = make_logger();
  return *instance;
}

} // namespace

char* write_utc(char* out, std::chrono::system_clock::time_point t, time_digits digits) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto secs = us / 1'000'000;
  auto rem = us % 1'000'000;
  if (rem < 0) { // before 1970: the second below, and the fraction above it
    rem += 1'000'000;
    --secs;
  }
  // The date and time of the second, formatted once per second and thread
  // (every log and access log line asks for it).
  thread_local long long cached_secs = 0;
  thread_local char cached[24] = {};
  thread_local std::size_t cached_len = 0;
  if (cached_len == 0 || cached_secs != secs) {
    std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    cached_len = std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_secs = secs;
  }
  std::memcpy(out, cached, cached_len);
  out += cached_len;
  auto fraction = [&out](int value, int width) {
    *out++ = '.';
    for (int i = width - 1; i >= 0; --i, value /= 10)
      out[i] = static_cast<char>('0' + value % 10);
    out += width;
  };
  if (digits == time_digits::millis)
    fraction(static_cast<int>(rem / 1000), 3);
  else if (digits == time_digits::micros)
    fraction(static_cast<int>(rem), 6);
  *out++ = 'Z';
  return out;
}

void append_utc(std::string& out, std::chrono::system_clock::time_point t, time_digits digits) {
  char text[utc_room];
  out.append(text, static_cast<std::size_t>(write_utc(text, t, digits) - text));
}

std::string utc(std::chrono::system_clock::time_point t, time_digits digits) {
  std::string out;
  append_utc(out, t, digits);
  return out;
}

namespace {

// -- redaction -------------------------------------------------------------------

struct redaction_rules {
  std::vector<std::string> keys; ///< Lower-case substrings of secret field names.
  std::vector<std::regex> patterns;
};

const std::vector<std::string>& default_secret_keys() {
  static const std::vector<std::string> keys = {
    "password",  "passwd",      "secret",     "token",         "apikey", "api_key",    "api-key",  "access_key",
    "accesskey", "private_key", "privatekey", "authorization", "cookie", "credential", "signature"};
  return keys;
}

std::mutex rules_mtx;
std::shared_ptr<const redaction_rules> rules =
  std::make_shared<const redaction_rules>(redaction_rules{default_secret_keys(), {}});

std::shared_ptr<const redaction_rules> current_rules() {
  std::lock_guard<std::mutex> guard(rules_mtx);
  return rules;
}

bool names_secret(std::string_view name, const redaction_rules& r) {
  std::string low(name);
  std::transform(low.begin(), low.end(), low.begin(), text::lower);
  return std::any_of(r.keys.begin(), r.keys.end(),
                     [&](const std::string& k) { return low.find(k) != std::string::npos; });
}

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool token_char(char c) {
  return word_char(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

bool email_local_char(char c) {
  return word_char(c) || c == '.' || c == '%' || c == '+';
}

bool starts_with_ci(std::string_view t, std::size_t at, std::string_view prefix) {
  if (t.size() - at < prefix.size())
    return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (text::lower(t[at + i]) != prefix[i])
      return false;
  return true;
}

/// Length of an e-mail address whose '@' is at `at`, as [begin, end), or
/// false when it is not one.
bool email_at(std::string_view t, std::size_t at, std::size_t& begin, std::size_t& end) {
  begin = at;
  while (begin > 0 && email_local_char(t[begin - 1]))
    --begin;
  end = at + 1;
  std::size_t last_dot = 0;
  while (end < t.size() && (word_char(t[end]) || t[end] == '.')) {
    if (t[end] == '.')
      last_dot = end;
    ++end;
  }
  while (end > at + 1 && t[end - 1] == '.')
    --end; // a sentence's full stop
  if (begin == at || last_dot <= at + 1 || last_dot >= end)
    return false;
  std::size_t tld = 0;
  for (auto i = last_dot + 1; i < end; ++i, ++tld)
    if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z')))
      return false;
  return tld >= 2;
}

/// The end of an API key of a well-known shape that starts at `i` (a
/// prefix and at least 16 more word characters), else 0.
std::size_t key_at(std::string_view t, std::size_t i) {
  static const std::string_view key_prefixes[] = {"bwk_",  "sk-",   "ghp_", "gho_",  "github_pat_",
                                                  "xoxb-", "xoxp-", "akia", "glpat-"};
  for (auto prefix : key_prefixes)
    if (starts_with_ci(t, i, prefix)) {
      auto j = i + prefix.size();
      while (j < t.size() && word_char(t[j]))
        ++j;
      return j - i - prefix.size() >= 16 ? j : 0;
    }
  return 0;
}

/// The built-in rules over free text, in one pass.
std::string scrub(std::string_view t, const redaction_rules& r) {
  std::string out;
  out.reserve(t.size());
  std::size_t i = 0;
  while (i < t.size()) {
    bool boundary = i == 0 || !word_char(t[i - 1]);
    // Authorization schemes: "Bearer <token>", "Basic <credentials>".
    if (boundary && (starts_with_ci(t, i, "bearer ") || starts_with_ci(t, i, "basic "))) {
      auto space = t.find(' ', i);
      auto j = space + 1;
      while (j < t.size() && t[j] == ' ')
        ++j;
      auto k = j;
      while (k < t.size() && token_char(t[k]))
        ++k;
      if (k > j) {
        out.append(t.substr(i, j - i)).append("[REDACTED]");
        i = k;
        continue;
      }
    }
    // JWTs: header.payload.signature, the header starting "eyJ".
    if (boundary && t.compare(i, 3, "eyJ") == 0) {
      auto j = i;
      int dots = 0;
      while (j < t.size() && (word_char(t[j]) || t[j] == '.')) {
        dots += t[j] == '.';
        ++j;
      }
      if (dots >= 2) {
        out.append("[REDACTED:jwt]");
        i = j;
        continue;
      }
    }
    // API keys of well-known shapes (also inside a name: "tool-sk-…").
    if (i == 0 || !std::isalnum(static_cast<unsigned char>(t[i - 1])))
      if (auto end = key_at(t, i)) {
        out.append("[REDACTED:key]");
        i = end;
        continue;
      }
    // name=value, name: value, "name":"value" where the name names a secret.
    if (boundary && word_char(t[i])) {
      auto j = i;
      while (j < t.size() && word_char(t[j]))
        ++j;
      auto name = t.substr(i, j - i);
      auto k = j;
      if (k < t.size() && (t[k] == '"' || t[k] == '\\'))
        while (k < t.size() && (t[k] == '"' || t[k] == '\\'))
          ++k;
      while (k < t.size() && t[k] == ' ')
        ++k;
      if (k < t.size() && (t[k] == '=' || t[k] == ':') && names_secret(name, r)) {
        ++k;
        while (k < t.size() && (t[k] == ' ' || t[k] == '"' || t[k] == '\\'))
          ++k;
        auto v = k;
        // "Authorization: Bearer <token>": the scheme and its token together.
        if (starts_with_ci(t, v, "bearer ") || starts_with_ci(t, v, "basic ")) {
          v = t.find(' ', v);
          while (v < t.size() && t[v] == ' ')
            ++v;
        }
        while (v < t.size() && t[v] != '"' && t[v] != '\\' && t[v] != ',' && t[v] != '&' && t[v] != ';' && t[v] != '}'
               && t[v] != ' ' && t[v] != '\n')
          ++v;
        if (v > k) {
          out.append(t.substr(i, k - i)).append("[REDACTED]");
          i = v;
          continue;
        }
      }
      // Not a secret's name: copy the word, keys inside it redacted.
      for (auto p = i; p < j;) {
        auto end = p > i && !std::isalnum(static_cast<unsigned char>(t[p - 1])) ? key_at(t, p) : 0;
        if (end) {
          out.append("[REDACTED:key]");
          p = end;
        } else {
          out.push_back(t[p++]);
        }
      }
      i = j;
      continue;
    }
    if (t[i] == '@') {
      std::size_t b = 0, e = 0;
      if (email_at(t, i, b, e)) {
        // The local part was already copied: take it back.
        out.resize(out.size() - (i - b));
        out.append("[REDACTED:email]");
        i = e;
        continue;
      }
    }
    out.push_back(t[i]);
    ++i;
  }
  return out;
}

std::string redact_text_with(std::string_view text, const redaction_rules& r) {
  auto out = scrub(text, r);
  for (auto& re : r.patterns)
    out = std::regex_replace(out, re, "[REDACTED]");
  return out;
}

json::value redact_with(const json::value& v, const redaction_rules& r) {
  if (v.is_string())
    return json::value(redact_text_with(v.as_string(), r));
  if (v.is_array()) {
    json::value out(json::array{});
    for (auto& x : v.as_array())
      out.push_back(redact_with(x, r));
    return out;
  }
  if (v.is_object()) {
    json::value out(json::object{});
    for (auto& [k, x] : v.as_object())
      out.set(k, names_secret(k, r) && !x.is_null() ? json::value("[REDACTED]") : redact_with(x, r));
    return out;
  }
  return v;
}

} // namespace

void set_redaction(std::vector<std::string> extra_keys, std::vector<std::string> patterns) {
  redaction_rules next{default_secret_keys(), {}};
  for (auto& k : extra_keys) {
    std::transform(k.begin(), k.end(), k.begin(), text::lower);
    if (!k.empty())
      next.keys.push_back(std::move(k));
  }
  for (auto& p : patterns) {
    try {
      next.patterns.emplace_back(p, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("redaction pattern \"" + p + "\" does not compile: " + e.what());
    }
  }
  std::lock_guard<std::mutex> guard(rules_mtx);
  rules = std::make_shared<const redaction_rules>(std::move(next));
}

std::string redact_text(std::string_view text) {
  return redact_text_with(text, *current_rules());
}

json::value redact(const json::value& v) {
  return redact_with(v, *current_rules());
}

void init(log_level min) {
  set_level(min);
  logger();
}

void set_level(log_level min) {
  min_level.store(static_cast<int>(min));
}

void write(log_level lvl, std::string_view msg, const json::value& fields) {
  if (static_cast<int>(lvl) < min_level.load(std::memory_order_relaxed))
    return;
  std::string line;
  line.reserve(128);
  line.append(R"({"ts":")");
  append_utc(line, std::chrono::system_clock::now(), time_digits::micros);
  line.append(R"(","level":)");
  json::write_string(line, to_string(lvl));
  auto r = current_rules();
  line.append(R"(,"msg":)");
  json::write_string(line, redact_text_with(msg, *r));
  for (auto& [k, v] : fields.as_object()) {
    line.push_back(',');
    json::write_string(line, k);
    line.push_back(':');
    if (names_secret(k, *r) && !v.is_null())
      json::write_string(line, "[REDACTED]");
    else
      json::write(line, redact_with(v, *r));
  }
  line.push_back('}');
  logger().info(line);
}

} // namespace bulwark::log
