#include "config/secrets.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

namespace bulwark::secrets {

namespace {

/// The name after `${kind` in a reference of that kind, or nothing.
std::optional<std::string_view> referenced(std::string_view text, std::string_view kind) {
  if (text.size() <= kind.size() + 3 || text.substr(0, 2) != "${" || text.substr(2, kind.size()) != kind
      || text.back() != '}')
    return std::nullopt;
  return text.substr(2 + kind.size(), text.size() - 3 - kind.size());
}

std::optional<std::string> read_file(const std::string& path, std::string& error) {
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

} // namespace

std::optional<std::string> resolve(std::string_view text, std::string& error) {
  if (auto name = referenced(text, "env:")) {
    auto var = std::string(*name);
    const char* v = std::getenv(var.c_str());
    if (!v) {
      error = "the environment variable " + var + " is not set";
      return std::nullopt;
    }
    return std::string(v);
  }
  if (auto path = referenced(text, "file:"))
    return read_file(std::string(*path), error);
  return std::string(text);
}

bool is_reference(std::string_view text) noexcept {
  return text.size() >= 3 && text.substr(0, 2) == "${" && text.back() == '}';
}

std::string check(std::string_view text) {
  if (!is_reference(text))
    return {};
  if (text == "${env:}" || text == "${file:}")
    return "names no variable or file";
  if (!referenced(text, "env:") && !referenced(text, "file:"))
    return "is a reference of an unknown kind: write ${env:NAME} or ${file:PATH}";
  std::string error;
  if (!resolve(text, error))
    return error;
  return {};
}

secret_value::secret_value(std::string text) : text_(std::move(text)) {
  is_file_ = referenced(text_, "file:").has_value();
}

std::optional<std::string> secret_value::get(std::string& error) {
  if (!is_file_) {
    if (!have_) {
      auto v = resolve(text_, error);
      if (!v)
        return std::nullopt;
      value_ = std::move(*v);
      have_ = true;
    }
    return value_;
  }
  auto now = std::chrono::steady_clock::now();
  if (have_ && now - checked_ < std::chrono::seconds(1))
    return value_;
  checked_ = now;
  auto path = std::string(*referenced(text_, "file:"));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    long long mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    long long size = static_cast<long long>(st.st_size);
    if (have_ && mtime == mtime_ns_ && size == size_)
      return value_;
    if (auto v = read_file(path, error)) {
      value_ = std::move(*v);
      have_ = true;
      warned_ = false;
      mtime_ns_ = mtime;
      size_ = size;
      return value_;
    }
  } else {
    error = "cannot read " + path;
  }
  if (!have_)
    return std::nullopt;
  if (warned_)
    error.clear();
  else
    error = "cannot read " + path + " again: its last contents are used";
  warned_ = true;
  return value_;
}

secret_headers::secret_headers(const list& written) {
  for (auto& [name, text] : written)
    if (is_reference(text))
      referenced_.emplace_back(name, secret_value(text));
    else
      fixed_.emplace_back(name, text);
}

void secret_headers::add_to(list& out, std::string& error) {
  for (auto& [name, secret] : referenced_) {
    std::string why;
    auto v = secret.get(why);
    if (!why.empty())
      error += (error.empty() ? "" : "; ") + ("header " + name + ": " + why);
    if (v)
      out.emplace_back(name, std::move(*v));
  }
}

} // namespace bulwark::secrets
