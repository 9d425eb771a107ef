#include "messages/catalog.hpp"

#include "messages/schema.hpp"

namespace bulwark {

// -- call_context -------------------------------------------------------------------

call_context::call_context(std::string method, json::value params, client_view client)
    : method_(std::move(method)), params_(std::move(params)), client_(std::move(client)) {
  if (auto* args = params_.find("arguments"); args && args->is_object())
    args_in_params_ = args;
  else
    arguments_ = json::value(json::object{});
}

bool call_context::begin_answer() noexcept {
  if (done_)
    return false;
  done_ = true;
  return owner_ != nullptr;
}

void call_context::resume(call_handler next) const {
  if (resumer_)
    resumer_(std::const_pointer_cast<call_context>(shared_from_this()), std::move(next));
}

void call_context::progress(double p, std::optional<double> total, std::string message) {
  if (!done_ && owner_)
    owner_->on_progress(*this, p, total, std::move(message));
}

void call_context::log(log_level lvl, json::value data, std::string logger) {
  if (!done_ && owner_)
    owner_->on_log(*this, lvl, std::move(data), std::move(logger));
}

void call_context::after(std::chrono::milliseconds delay, call_handler next) {
  if (!done_ && owner_)
    owner_->on_after(shared_from_this(), delay, std::move(next));
}

void call_context::finish(json::value result) {
  if (!begin_answer())
    return;
  // An answered call cannot be cancelled any more; dropping the hook also
  // frees what it holds (which may point back at this call).
  cancel_hook_ = nullptr;
  owner_->on_finish(*this, std::move(result));
}

void call_context::fail(error_code code, std::string message, json::value data) {
  if (!begin_answer())
    return;
  cancel_hook_ = nullptr;
  owner_->on_fail(*this, code, std::move(message), std::move(data));
}

void call_context::require_input(json::value requests, std::string state) {
  if (begin_answer())
    owner_->on_input_required(*this, std::move(requests), std::move(state));
}

// -- catalog ---------------------------------------------------------------------------

const tool_spec* catalog::find_tool(std::string_view name) const noexcept {
  for (auto& t : tools)
    if (t.name == name)
      return &t;
  return nullptr;
}

const prompt_spec* catalog::find_prompt(std::string_view name) const noexcept {
  for (auto& p : prompts)
    if (p.name == name)
      return &p;
  return nullptr;
}

const resource_spec* catalog::find_resource(std::string_view uri) const noexcept {
  for (auto& r : resources)
    if (r.uri == uri)
      return &r;
  return nullptr;
}

const resource_template_spec* catalog::match_template(std::string_view uri, json::value& vars) const {
  for (auto& t : templates) {
    json::value v(json::object{});
    if (match_uri_template(t.uri_template, uri, v)) {
      vars = std::move(v);
      return &t;
    }
  }
  return nullptr;
}

namespace {

void set_if(json::value& obj, const char* key, const std::string& s) {
  if (!s.empty())
    obj.set(key, s);
}

} // namespace

json::value catalog::describe(const tool_spec& t) {
  json::value out(json::object{});
  out.set("name", t.name);
  set_if(out, "title", t.title);
  out.set("description", t.description);
  out.set("inputSchema", t.input_schema.is_object() ? t.input_schema : json::value::make_object({{"type", "object"}}));
  if (t.output_schema.is_object())
    out.set("outputSchema", t.output_schema);
  if (t.annotations.is_object())
    out.set("annotations", t.annotations);
  if (t.meta.is_object())
    out.set("_meta", t.meta);
  return out;
}

json::value catalog::describe(const resource_spec& r) {
  json::value out(json::object{});
  out.set("uri", r.uri);
  out.set("name", r.name);
  set_if(out, "title", r.title);
  out.set("description", r.description);
  set_if(out, "mimeType", r.mime_type);
  return out;
}

json::value catalog::describe(const resource_template_spec& r) {
  json::value out(json::object{});
  out.set("uriTemplate", r.uri_template);
  out.set("name", r.name);
  set_if(out, "title", r.title);
  out.set("description", r.description);
  set_if(out, "mimeType", r.mime_type);
  return out;
}

json::value catalog::describe(const prompt_spec& p) {
  json::value out(json::object{});
  out.set("name", p.name);
  set_if(out, "title", p.title);
  out.set("description", p.description);
  if (!p.arguments.empty()) {
    json::value args(json::array{});
    for (auto& a : p.arguments) {
      json::value arg(json::object{});
      arg.set("name", a.name);
      set_if(arg, "description", a.description);
      arg.set("required", a.required);
      args.push_back(std::move(arg));
    }
    out.set("arguments", std::move(args));
  }
  return out;
}

bool match_uri_template(std::string_view tmpl, std::string_view uri, json::value& vars) {
  std::size_t ti = 0;
  std::size_t ui = 0;
  while (ti < tmpl.size()) {
    if (tmpl[ti] == '{') {
      auto close = tmpl.find('}', ti);
      if (close == std::string_view::npos)
        return false;
      auto name = tmpl.substr(ti + 1, close - ti - 1);
      ti = close + 1;
      // A variable runs to the next literal character of the template (or
      // the end), and never across a '/'.
      char stop = ti < tmpl.size() ? tmpl[ti] : '\0';
      auto start = ui;
      while (ui < uri.size() && uri[ui] != '/' && (stop == '\0' || uri[ui] != stop))
        ++ui;
      if (ui == start)
        return false;
      vars.set(std::string(name), std::string(uri.substr(start, ui - start)));
    } else {
      if (ui >= uri.size() || uri[ui] != tmpl[ti])
        return false;
      ++ti;
      ++ui;
    }
  }
  return ui == uri.size();
}

std::optional<argument_errors> check_arguments(const tool_spec& t, const json::value& arguments) {
  if (!t.validator)
    return std::nullopt;
  auto errors = t.validator->validate(arguments);
  if (errors.empty())
    return std::nullopt;
  return argument_errors{"invalid arguments for tool " + t.name + ": " + schema::summary(errors),
                         json::value::make_object({{"tool", t.name}, {"errors", schema::errors_to_json(errors)}})};
}

// -- resource watches -----------------------------------------------------------------

void resource_watches::on_change(std::function<void()> f) {
  std::lock_guard<std::mutex> guard(mtx_);
  on_change_ = f ? std::make_shared<std::function<void()>>(std::move(f)) : nullptr;
}

std::string describe(watch_refusal r) {
  switch (r) {
    case watch_refusal::none:
      return {};
    case watch_refusal::uri_too_long:
      return "the resource URI is longer than " + std::to_string(max_uri_bytes) + " bytes";
    case watch_refusal::too_many:
      return "this session watches " + std::to_string(max_watched_resources)
             + " resources already, the most it may; unsubscribe from one first";
    case watch_refusal::session_bytes:
      return "the URIs this session watches would exceed " + std::to_string(max_watched_bytes)
             + " bytes; unsubscribe from one first";
    case watch_refusal::identity_bytes:
      return "the URIs this caller watches over all its sessions would exceed "
             + std::to_string(max_watched_bytes_per_identity) + " bytes";
    case watch_refusal::server_bytes:
      return "this server watches as many resources as it may (" + std::to_string(max_watched_bytes_total)
             + " bytes of URIs); retry later";
  }
  return {};
}

watch_refusal resource_watches::add(const std::string& uri, const std::string& identity) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    auto& mine = identity_bytes_[identity];
    if (mine + uri.size() > max_watched_bytes_per_identity) {
      if (mine == 0)
        identity_bytes_.erase(identity);
      return watch_refusal::identity_bytes;
    }
    auto i = counts_.find(uri);
    if (i == counts_.end() && distinct_bytes_ + uri.size() > max_watched_bytes_total) {
      if (mine == 0)
        identity_bytes_.erase(identity);
      return watch_refusal::server_bytes;
    }
    mine += uri.size();
    if (i != counts_.end()) {
      ++i->second;
      return watch_refusal::none;
    }
    counts_.emplace(uri, 1);
    distinct_bytes_ += uri.size();
  }
  changed();
  return watch_refusal::none;
}

void resource_watches::remove(const std::string& uri, const std::string& identity) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    if (auto b = identity_bytes_.find(identity); b != identity_bytes_.end()) {
      b->second -= std::min(b->second, uri.size());
      if (b->second == 0)
        identity_bytes_.erase(b);
    }
    auto i = counts_.find(uri);
    if (i == counts_.end() || --i->second > 0)
      return;
    counts_.erase(i);
    distinct_bytes_ -= std::min(distinct_bytes_, uri.size());
  }
  changed();
}

std::vector<std::string> resource_watches::watched() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<std::string> out;
  out.reserve(counts_.size());
  for (auto& [uri, n] : counts_)
    out.push_back(uri);
  return out;
}

void resource_watches::changed() {
  std::shared_ptr<std::function<void()>> f;
  {
    std::lock_guard<std::mutex> guard(mtx_);
    f = on_change_;
  }
  if (f)
    (*f)();
}

watch_set::watch_set(watch_set&& other) noexcept
    : registry_(std::move(other.registry_)),
      identity_(std::move(other.identity_)),
      uris_(std::move(other.uris_)),
      bytes_(other.bytes_) {
  other.uris_.clear();
  other.bytes_ = 0;
}

watch_set& watch_set::operator=(watch_set&& other) noexcept {
  if (this != &other) {
    release();
    registry_ = std::move(other.registry_);
    identity_ = std::move(other.identity_);
    uris_ = std::move(other.uris_);
    bytes_ = other.bytes_;
    other.uris_.clear();
    other.bytes_ = 0;
  }
  return *this;
}

watch_set::~watch_set() {
  release();
}

watch_refusal watch_set::insert(const std::shared_ptr<resource_watches>& registry, const std::string& uri,
                                const std::string& identity, bool& added) {
  added = false;
  if (uri.size() > max_uri_bytes)
    return watch_refusal::uri_too_long;
  if (uris_.count(uri))
    return watch_refusal::none;
  if (uris_.size() >= max_watched_resources)
    return watch_refusal::too_many;
  if (bytes_ + uri.size() > max_watched_bytes)
    return watch_refusal::session_bytes;
  if (!registry_) {
    registry_ = registry;
    identity_ = identity;
  }
  if (registry_)
    if (auto refused = registry_->add(uri, identity_); refused != watch_refusal::none)
      return refused;
  uris_.insert(uri);
  bytes_ += uri.size();
  added = true;
  return watch_refusal::none;
}

bool watch_set::erase(const std::string& uri) {
  if (uris_.erase(uri) == 0)
    return false;
  bytes_ -= std::min(bytes_, uri.size());
  if (registry_)
    registry_->remove(uri, identity_);
  return true;
}

void watch_set::release() noexcept {
  if (registry_)
    for (auto& uri : uris_)
      registry_->remove(uri, identity_);
  uris_.clear();
  bytes_ = 0;
}

} // namespace bulwark
