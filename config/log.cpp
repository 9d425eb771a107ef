#include "config/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

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

void timestamp(std::string& out) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = time_point_cast<seconds>(now);
  auto micros = duration_cast<microseconds>(now - secs).count();
  std::time_t t = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  std::snprintf(buf, sizeof buf, ".%06lldZ", static_cast<long long>(micros));
  out.append(buf);
}

} // namespace

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
  timestamp(line);
  line.append(R"(","level":)");
  json::write_string(line, to_string(lvl));
  line.append(R"(,"msg":)");
  json::write_string(line, msg);
  for (auto& [k, v] : fields.as_object()) {
    line.push_back(',');
    json::write_string(line, k);
    line.push_back(':');
    json::write(line, v);
  }
  line.push_back('}');
  logger().info(line);
}

} // namespace bulwark::log
