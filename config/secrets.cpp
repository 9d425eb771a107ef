#include "config/secrets.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bulwark::secrets {

std::optional<std::string> resolve(std::string_view text, std::string& error) {
  auto reference = [&](std::string_view kind) {
    return text.size() > kind.size() + 3 && text.substr(0, 2) == "${" && text.substr(2, kind.size()) == kind
           && text.back() == '}';
  };
  if (reference("env:")) {
    auto name = std::string(text.substr(6, text.size() - 7));
    const char* v = std::getenv(name.c_str());
    if (!v) {
      error = "the environment variable " + name + " is not set";
      return std::nullopt;
    }
    return std::string(v);
  }
  if (reference("file:")) {
    auto path = std::string(text.substr(7, text.size() - 8));
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error = "cannot read " + path;
      return std::nullopt;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    auto s = buf.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
      s.pop_back();
    return s;
  }
  return std::string(text);
}

} // namespace bulwark::secrets
