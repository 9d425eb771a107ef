// Secret references in settings that carry credentials: a value
// `${env:NAME}` stands for the environment variable NAME, `${file:PATH}`
// for the file's contents (without a trailing newline). Anything else is
// the literal value. References are checked when the configuration is read
// and resolved where the credential is used: a changed variable takes
// effect on the next reload, a changed file on the next request.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::secrets {

/// The value `text` stands for; nothing (and `error` says why) when it
/// names a variable that is not set or a file that cannot be read.
std::optional<std::string> resolve(std::string_view text, std::string& error);

/// Whether `text` is written as a reference (`${...}`), well formed or not.
bool is_reference(std::string_view text) noexcept;

/// Why `text` cannot be used as a credential setting's value (a reference
/// of an unknown kind, an empty name, a variable that is not set, a file
/// that cannot be read); empty when it can. The message never holds the
/// value itself.
std::string check(std::string_view text);

/// One credential setting's value, resolved when used. A file reference is
/// read again when the file changed (its modification time or size, looked
/// at no more than once a second); a variable is read once. When a file
/// that was read before cannot be read now, its last contents are kept and
/// `get` says so once in `error`.
class secret_value {
public:
  secret_value() = default;
  explicit secret_value(std::string text);

  /// The current value; nothing (and `error` says why) when it was never
  /// readable.
  std::optional<std::string> get(std::string& error);

  const std::string& text() const noexcept { return text_; }

private:
  std::string text_;
  std::string value_;
  bool have_ = false;
  bool is_file_ = false;
  bool warned_ = false;
  std::chrono::steady_clock::time_point checked_{};
  long long mtime_ns_ = -1;
  long long size_ = -1;
};

/// A client's headers as written: the literal ones, fixed for the client's
/// life, and those written as references, each a `secret_value` read when
/// a request is sent (a changed file takes effect on the next request).
class secret_headers {
public:
  using list = std::vector<std::pair<std::string, std::string>>;

  secret_headers() = default;
  explicit secret_headers(const list& written);

  /// The headers written literally.
  const list& fixed() const noexcept { return fixed_; }
  /// Appends the referenced headers' current values to `out`. `error`
  /// gets why one could not be read (naming the header, never a value);
  /// one that was never readable is left out.
  void add_to(list& out, std::string& error);

private:
  list fixed_;
  std::vector<std::pair<std::string, secret_value>> referenced_;
};

} // namespace bulwark::secrets
