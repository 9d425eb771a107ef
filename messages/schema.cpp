#include "messages/schema.hpp"

#include <algorithm>
#include <string>

#include "messages/schema_compile.hpp"
#include "messages/schema_validate.hpp"

namespace bulwark::schema {

using json::kind;

// -- validator -----------------------------------------------------------------

validator::validator(const json::value& schema) {
  try {
    program_ = compile(schema, problem_);
  } catch (const std::exception& e) {
    // Only allocation failures are expected here; the schema stays unread.
    problem_ = std::string("cannot compile the schema: ") + e.what();
  }
}

std::vector<error> validator::validate(const json::value& instance) const {
  if (!program_)
    return {};
  return errors_of(*program_, instance);
}

bool validator::accepts(const json::value& instance) const {
  return !program_ || passes(*program_, instance);
}

// -- reporting -----------------------------------------------------------------

json::value errors_to_json(const std::vector<error>& errors) {
  json::array out;
  out.reserve(errors.size());
  for (auto& e : errors)
    out.push_back(json::value::make_object({{"path", e.path}, {"keyword", e.keyword}, {"message", e.message}}));
  return json::value(std::move(out));
}

std::string summary(const std::vector<error>& errors) {
  if (errors.empty())
    return "arguments are valid";
  std::string text = "arguments are invalid: ";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    auto& e = errors[i];
    if (i > 0)
      text.append("; ");
    if (e.keyword == "truncated")
      text.append(e.message);
    else if (e.path.empty())
      text.append("the arguments ").append(e.message);
    else
      text.append(e.path).append(" ").append(e.message);
  }
  return text;
}

// -- sanitizing ----------------------------------------------------------------

namespace {

bool stripped(unsigned char c) noexcept {
  return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
}

bool strip(std::string& s) {
  auto end = std::remove_if(s.begin(), s.end(), [](char c) { return stripped(static_cast<unsigned char>(c)); });
  if (end == s.end())
    return false;
  s.erase(end, s.end());
  return true;
}

} // namespace

bool has_control_characters(const json::value& v) {
  auto dirty = [](const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return stripped(static_cast<unsigned char>(c)); });
  };
  if (v.is_string())
    return dirty(v.as_string());
  if (v.is_array())
    return std::any_of(v.as_array().begin(), v.as_array().end(),
                       [](const json::value& x) { return has_control_characters(x); });
  if (v.is_object())
    for (auto& [k, x] : v.as_object())
      if (dirty(k) || has_control_characters(x))
        return true;
  return false;
}

bool strip_control_characters(json::value& v) {
  switch (v.type()) {
    case kind::string: {
      auto& s = v.as_string();
      if (std::none_of(s.begin(), s.end(), [](char c) { return stripped(static_cast<unsigned char>(c)); }))
        return false;
      std::string copy = s;
      strip(copy);
      v = json::value(std::move(copy));
      return true;
    }
    case kind::array: {
      bool changed = false;
      for (auto& item : v.mutable_array())
        changed |= strip_control_characters(item);
      return changed;
    }
    case kind::object: {
      auto& members = v.mutable_object();
      bool changed = false, renamed = false;
      for (auto& [key, member] : members) {
        renamed |= strip(key);
        changed |= strip_control_characters(member);
      }
      if (renamed) {
        // Keep the first of members whose names now coincide.
        json::object kept;
        kept.reserve(members.size());
        for (auto& m : members)
          if (std::none_of(kept.begin(), kept.end(), [&](auto& k) { return k.first == m.first; }))
            kept.push_back(std::move(m));
        members = std::move(kept);
      }
      return changed || renamed;
    }
    default:
      return false;
  }
}

} // namespace bulwark::schema
