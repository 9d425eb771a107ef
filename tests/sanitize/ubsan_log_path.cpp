// Makes UBSan's reports reach files, like ASan's, in a sanitizer build.
//
// g++ links the two runtimes separately (libasan and libubsan), and the
// UBSan one does not take `log_path` from UBSAN_OPTIONS: its reports go to
// stderr, where nothing looks for them once a test has stopped the process.
// At start-up this hands UBSan the `log_path` that UBSAN_OPTIONS names, so
// each report lands in PATH.PID beside ASan's (tests/run.sh fails the
// sanitize stage on any file there). Linked into every program that links
// bulwark_core in such a build (its interface names the symbol below).

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <string_view>

extern "C" void bulwark_ubsan_log_path() {}

namespace {

/// The value of `log_path` in a sanitizer option string (`a=1:log_path=/x:b=2`).
std::string log_path_of(std::string_view options) {
  while (!options.empty()) {
    auto end = options.find(':');
    auto item = options.substr(0, end);
    constexpr std::string_view key = "log_path=";
    if (item.substr(0, key.size()) == key)
      return std::string{item.substr(key.size())};
    if (end == std::string_view::npos)
      break;
    options.remove_prefix(end + 1);
  }
  return {};
}

__attribute__((constructor)) void hand_ubsan_its_log_path() {
  const char* options = std::getenv("UBSAN_OPTIONS");
  if (options == nullptr)
    return;
  auto path = log_path_of(options);
  if (path.empty())
    return;
  void* runtime = ::dlopen("libubsan.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (runtime == nullptr)
    return;
  using setter = void (*)(const char*);
  if (auto set = reinterpret_cast<setter>(::dlsym(runtime, "__sanitizer_set_report_path")))
    set(path.c_str());
  ::dlclose(runtime);
}

} // namespace
