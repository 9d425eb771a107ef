// Small ASCII text helpers shared by the codec and the HTTP code (header
// names, media types and tokens are ASCII; no locale is involved).
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

namespace bulwark::text {

inline char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

/// `s` in ASCII lower case.
inline std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = lower(c);
  return out;
}

inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

/// A std::string_view of another library's string view (anything with
/// data() and size(), such as Beast's header names and values).
template <class Chars>
std::string_view view(const Chars& s) {
  return {s.data(), s.size()};
}

/// Without leading and trailing spaces and tabs (HTTP's optional white space).
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Only visible ASCII and tabs: what an HTTP header value carries as it is.
inline bool header_safe(std::string_view s) {
  for (unsigned char c : s)
    if (!(c == '\t' || (c >= 0x20 && c <= 0x7E)))
      return false;
  return true;
}

/// `x` with at most `decimals` decimals and no trailing zeros: "7.5", "5".
inline std::string trimmed_number(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0')
      s.pop_back();
    if (s.back() == '.')
      s.pop_back();
  }
  return s;
}

/// `in` with its %XX escapes decoded (RFC 3986) into `out`; false on a
/// malformed escape.
inline bool percent_decode(std::string_view in, std::string& out) {
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size() || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0)
      return false;
    out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
    i += 2;
  }
  return true;
}

} // namespace bulwark::text
