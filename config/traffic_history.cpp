#include "config/traffic_history.hpp"

#include <algorithm>
#include <cmath>

namespace bulwark::metrics {

namespace {

/// `now - before` bucket by bucket; a histogram that restarted (fewer
/// observations than before) counts from zero.
histogram_snapshot difference(const histogram_snapshot& now, const histogram_snapshot& before) {
  if (now.count < before.count || now.cumulative.size() != before.cumulative.size())
    return now;
  histogram_snapshot d = now;
  for (std::size_t i = 0; i < d.cumulative.size(); ++i)
    d.cumulative[i] = now.cumulative[i] >= before.cumulative[i] ? now.cumulative[i] - before.cumulative[i] : 0;
  d.count = now.count - before.count;
  d.sum = now.sum - before.sum;
  return d;
}

uint64_t since(uint64_t now, uint64_t before) {
  return now >= before ? now - before : now;
}

json::value quantile_or_null(const std::optional<double>& q) {
  return q && std::isfinite(*q) ? json::value(*q) : json::value();
}

json::value series_json(const std::deque<traffic_point>& points) {
  json::value t(json::array{}), rps(json::array{}), eps(json::array{}), p50(json::array{}), p99(json::array{});
  for (const auto& p : points) {
    t.push_back(static_cast<long long>(p.at_ms));
    rps.push_back(p.requests_per_second);
    eps.push_back(p.errors_per_second);
    p50.push_back(quantile_or_null(p.p50));
    p99.push_back(quantile_or_null(p.p99));
  }
  return json::value::make_object({{"t", std::move(t)},
                                   {"requestsPerSecond", std::move(rps)},
                                   {"errorsPerSecond", std::move(eps)},
                                   {"p50Seconds", std::move(p50)},
                                   {"p99Seconds", std::move(p99)}});
}

} // namespace

traffic_history::traffic_history(std::chrono::milliseconds step, std::chrono::milliseconds span)
    : step_(std::max(step, std::chrono::milliseconds(1))),
      span_(span),
      capacity_(static_cast<std::size_t>(std::max<int64_t>(1, span.count() / step_.count()))) {}

void traffic_history::set_step(std::chrono::milliseconds step) {
  step = std::max(step, std::chrono::milliseconds(1));
  std::lock_guard<std::mutex> guard(mtx_);
  if (step == step_)
    return;
  step_ = step;
  capacity_ = static_cast<std::size_t>(std::max<int64_t>(1, span_.count() / step_.count()));
  overall_.points.clear();
  for (auto& [name, s] : services_)
    s.points.clear();
}

bool traffic_history::due(clock::time_point now) const {
  std::lock_guard<std::mutex> guard(mtx_);
  return !last_step_ || now - *last_step_ >= step_;
}

void traffic_history::step_series(series& s, clock::time_point now, int64_t at_ms, const traffic_reading& r) {
  if (s.last) {
    double seconds = std::chrono::duration<double>(now - s.last_at).count();
    if (seconds > 0) {
      traffic_point p;
      p.at_ms = at_ms;
      p.requests_per_second = static_cast<double>(since(r.requests, s.last->requests)) / seconds;
      p.errors_per_second = static_cast<double>(since(r.errors, s.last->errors)) / seconds;
      auto latency = difference(r.latency, s.last->latency);
      if (latency.count > 0) {
        p.p50 = latency.quantile(0.5);
        p.p99 = latency.quantile(0.99);
      }
      s.points.push_back(p);
      while (s.points.size() > capacity_)
        s.points.pop_front();
    }
  }
  s.last = r;
  s.last_at = now;
}

void traffic_history::record(clock::time_point now, std::chrono::system_clock::time_point wall,
                             const traffic_reading& overall, const std::map<std::string, traffic_reading>& services) {
  auto at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
  std::lock_guard<std::mutex> guard(mtx_);
  last_step_ = now;
  step_series(overall_, now, at_ms, overall);
  for (const auto& [name, reading] : services)
    step_series(services_[name], now, at_ms, reading);
  for (auto it = services_.begin(); it != services_.end();) {
    if (!services.count(it->first) && now - it->second.last_at > span_)
      it = services_.erase(it);
    else
      ++it;
  }
}

json::value traffic_history::to_json() const {
  std::lock_guard<std::mutex> guard(mtx_);
  json::value services(json::object{});
  for (const auto& [name, s] : services_)
    services.set(name, series_json(s.points));
  return json::value::make_object({{"stepSeconds", std::chrono::duration<double>(step_).count()},
                                   {"spanSeconds", std::chrono::duration<double>(span_).count()},
                                   {"overall", series_json(overall_.points)},
                                   {"services", std::move(services)}});
}

std::deque<traffic_point> traffic_history::overall_points() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return overall_.points;
}

} // namespace bulwark::metrics
