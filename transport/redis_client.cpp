#include "transport/redis_client.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <poll.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "config/log.hpp"
#include "config/metrics.hpp"
#include "config/secrets.hpp"
#include "messages/text.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

redis_script::redis_script(std::string src) : source(std::move(src)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source.data()), source.size(), digest);
  char hex[2 * SHA_DIGEST_LENGTH + 1];
  for (int i = 0; i < SHA_DIGEST_LENGTH; ++i)
    std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  sha1.assign(hex, 2 * SHA_DIGEST_LENGTH);
}

namespace {

redis_reply convert(const redisReply* r) {
  redis_reply out;
  if (!r)
    return redis_reply::error("no reply");
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = redis_reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis_reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis_reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = redis_reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      for (size_t i = 0; i < r->elements; ++i)
        out.elements.push_back(convert(r->element[i]));
      break;
    default:
      break; // nil
  }
  return out;
}

struct context_deleter {
  void operator()(redisContext* c) const noexcept {
    if (c)
      redisFree(c);
  }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

struct reply_deleter {
  void operator()(redisReply* r) const noexcept {
    if (r)
      freeReplyObject(r);
  }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

/// Commands waiting for the I/O thread at most.
constexpr std::size_t max_queued = 10000;

timeval to_timeval(milliseconds d) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

} // namespace

struct redis_client::impl {
  redis_settings settings;
  std::string instance;
  redis_endpoint endpoint;
  std::string url_error;
  /// `redis.url` as written: a file reference is read again at each
  /// connection (the user and password of what it holds then; where Redis
  /// is stays as at start).
  std::mutex url_mtx;
  secrets::secret_value url;

  /// The user and password to authenticate a new connection with.
  std::pair<std::string, std::string> credentials() {
    std::lock_guard<std::mutex> lock(url_mtx);
    std::string error;
    auto written = url.get(error);
    if (!error.empty())
      log::warn("redis.url's secret reference", value::make_object({{"error", error}}));
    if (written) {
      auto now = parse_redis_url(*written, error);
      if (error.empty())
        return {now.user, now.password};
    }
    return {endpoint.user, endpoint.password};
  }

  struct pending {
    std::vector<std::string> args;
    redis_callback done;
    /// For EVALSHA: the script, sent with EVAL instead when the answer is
    /// NOSCRIPT (the EVAL arguments are made only then, not per call).
    const redis_script* script = nullptr;
  };

  mutable std::mutex mtx;
  std::condition_variable cv;
  std::deque<pending> queue;
  bool stopping = false;
  /// The subscription's connection broke: the command connection opens
  /// again too, and says whether Redis is back.
  bool reconnect = false;
  std::atomic<bool> up{false};
  std::atomic<bool> settled{false}; ///< The first connection attempt ended.
  bool reported = false; ///< The current outage was logged.
  std::string last_error;
  uint64_t sent = 0, failed = 0, outages = 0, published = 0, received = 0;
  system_clock::time_point down_since = system_clock::now();

  std::map<std::string, std::function<void(const std::string&)>> channels;
  std::vector<std::function<void()>> resubscribed, connected;
  std::atomic<bool> subscribed{false};

  std::thread io, sub;

  /// Keeps the registry of `round_trips` alive.
  std::shared_ptr<metrics::registry> registry;
  metrics::histogram* round_trips = nullptr;

  /// A connected, authenticated context on the configured database, or null
  /// with `why` set.
  context_ptr connect(std::string& why) {
    auto tv = to_timeval(settings.connect_timeout);
    context_ptr c(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv));
    if (!c || c->err) {
      why = c ? c->errstr : "cannot allocate a Redis context";
      return nullptr;
    }
    redisSetTimeout(c.get(), to_timeval(settings.command_timeout));
    auto check = [&](reply_ptr r) {
      if (!r) {
        why = c->errstr[0] ? c->errstr : "no answer";
        return false;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        why = std::string(r->str, r->len);
        return false;
      }
      return true;
    };
    // %b: the password may hold any byte, spaces included.
    auto [user, password] = credentials();
    if (!user.empty()) {
      if (!check(reply_ptr(static_cast<redisReply*>(
            redisCommand(c.get(), "AUTH %b %b", user.data(), user.size(), password.data(), password.size())))))
        return nullptr;
    } else if (!password.empty()
               && !check(reply_ptr(
                 static_cast<redisReply*>(redisCommand(c.get(), "AUTH %b", password.data(), password.size()))))) {
      return nullptr;
    }
    if (endpoint.db != 0
        && !check(reply_ptr(static_cast<redisReply*>(redisCommand(c.get(), "SELECT %d", endpoint.db)))))
      return nullptr;
    if (!check(reply_ptr(static_cast<redisReply*>(redisCommand(c.get(), "PING")))))
      return nullptr;
    return c;
  }

  /// Opens the breaker: fails what waits and records why.
  void went_down(const std::string& why) {
    std::deque<pending> dropped;
    {
      std::lock_guard<std::mutex> guard(mtx);
      bool was_up = up.exchange(false);
      if (was_up || !reported) {
        reported = true;
        outages += was_up ? 1 : 0;
        down_since = system_clock::now();
        log::warn("redis unreachable; each instance uses its local state",
                  value::make_object({{"redis", endpoint.host + ":" + std::to_string(endpoint.port)}, {"error", why}}));
      }
      last_error = why;
      dropped.swap(queue);
      failed += dropped.size();
    }
    for (auto& p : dropped)
      p.done(redis_reply::error("redis unavailable: " + why));
  }

  void came_up() {
    std::lock_guard<std::mutex> guard(mtx);
    reported = false;
    if (!up.exchange(true))
      log::info("redis reachable; shared state in use",
                value::make_object({{"redis", endpoint.host + ":" + std::to_string(endpoint.port)},
                                    {"downSeconds", duration<double>(system_clock::now() - down_since).count()}}));
    last_error.clear();
  }

  /// Waits `d` unless stopping; false when stopping.
  bool pause(milliseconds d) {
    std::unique_lock<std::mutex> lock(mtx);
    cv.wait_for(lock, d, [&] { return stopping; });
    return !stopping;
  }

  void run_io() {
    context_ptr c;
    std::deque<pending> batch;
    std::vector<const char*> argv; // reused for every command
    std::vector<size_t> lens;
    for (;;) {
      if (!c) {
        std::string why;
        c = connect(why);
        if (!c) {
          went_down(why);
          settled.store(true, std::memory_order_release);
          if (!pause(settings.retry_interval))
            return;
          continue;
        }
        came_up();
        for (auto& f : connected)
          f();
        settled.store(true, std::memory_order_release);
      }
      {
        std::unique_lock<std::mutex> lock(mtx);
        cv.wait(lock, [&] { return stopping || reconnect || !queue.empty() || !batch.empty(); });
        if (stopping)
          break;
        if (reconnect && batch.empty()) {
          reconnect = false;
          lock.unlock();
          c.reset();
          continue;
        }
        // One pipeline: everything that queued up while the last one ran.
        while (!queue.empty() && batch.size() < 512) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        sent += batch.size();
      }
      for (auto& p : batch) {
        argv.clear();
        lens.clear();
        for (auto& a : p.args) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
      }
      std::deque<pending> again;
      bool broken = false;
      std::string why;
      // The pipeline goes out with the first read of its answers.
      auto sent_at = steady_clock::now();
      for (auto& p : batch) {
        void* raw = nullptr;
        if (broken || redisGetReply(c.get(), &raw) != REDIS_OK) {
          if (!broken)
            why = c->errstr[0] ? c->errstr : "connection lost";
          broken = true;
          p.done(redis_reply::error("redis unavailable: " + why));
          continue;
        }
        if (round_trips)
          round_trips->observe(std::chrono::duration<double>(steady_clock::now() - sent_at).count());
        reply_ptr r(static_cast<redisReply*>(raw));
        auto answer = convert(r.get());
        if (answer.failed() && p.script && answer.str.compare(0, 8, "NOSCRIPT") == 0) {
          p.args[0] = "EVAL";
          p.args[1] = p.script->source;
          again.push_back(pending{std::move(p.args), std::move(p.done), nullptr});
          continue;
        }
        p.done(std::move(answer));
      }
      batch = std::move(again);
      if (broken) {
        c.reset();
        for (auto& p : batch)
          p.done(redis_reply::error("redis unavailable: " + why));
        batch.clear();
        went_down(why);
        // Open: stay away for a while, then probe with a new connection (a
        // Redis that accepts connections but answers too slowly must not
        // cost every call the command timeout).
        if (!pause(settings.retry_interval))
          break;
      }
    }
    std::deque<pending> left;
    {
      std::lock_guard<std::mutex> guard(mtx);
      left.swap(queue);
    }
    for (auto& p : batch)
      p.done(redis_reply::error("redis client stopped"));
    for (auto& p : left)
      p.done(redis_reply::error("redis client stopped"));
  }

  void run_subscriber() {
    if (channels.empty())
      return;
    bool first = true;
    while (true) {
      {
        std::lock_guard<std::mutex> guard(mtx);
        if (stopping)
          return;
      }
      std::string why;
      auto c = connect(why);
      if (!c) {
        subscribed = false;
        if (!pause(settings.retry_interval))
          return;
        continue;
      }
      std::vector<const char*> argv{"SUBSCRIBE"};
      std::vector<size_t> lens{9};
      for (auto& [name, f] : channels) {
        argv.push_back(name.data());
        lens.push_back(name.size());
      }
      redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
      int flushed = 0;
      while (redisBufferWrite(c.get(), &flushed) == REDIS_OK && !flushed) {
      }
      subscribed = true;
      if (!first)
        for (auto& f : resubscribed)
          f();
      first = false;
      // Wait for messages with poll, so that stopping is noticed in time.
      bool alive = true;
      while (alive) {
        {
          std::lock_guard<std::mutex> guard(mtx);
          if (stopping)
            return;
        }
        pollfd pfd{c->fd, POLLIN, 0};
        int n = ::poll(&pfd, 1, 200);
        if (n < 0)
          continue;
        if (n == 0)
          continue;
        if (redisBufferRead(c.get()) != REDIS_OK) {
          alive = false;
          break;
        }
        for (;;) {
          void* raw = nullptr;
          if (redisGetReplyFromReader(c.get(), &raw) != REDIS_OK) {
            alive = false;
            break;
          }
          if (!raw)
            break;
          reply_ptr r(static_cast<redisReply*>(raw));
          if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING
              && std::string(r->element[0]->str, r->element[0]->len) == "message") {
            std::string channel(r->element[1]->str, r->element[1]->len);
            std::string message(r->element[2]->str, r->element[2]->len);
            {
              std::lock_guard<std::mutex> guard(mtx);
              ++received;
            }
            if (auto i = channels.find(channel); i != channels.end())
              i->second(message);
          }
        }
      }
      subscribed = false;
      // A Redis that closed the connection is gone for commands too: say so
      // now rather than at the next command, and let the command connection
      // find out when it is back.
      went_down(c->errstr[0] ? c->errstr : "the subscription's connection was lost");
      {
        std::lock_guard<std::mutex> guard(mtx);
        reconnect = true;
      }
      cv.notify_all();
      if (!pause(settings.retry_interval))
        return;
    }
  }
};

redis_client::redis_client(redis_settings settings, std::string instance)
    : settings_(std::move(settings)), impl_(std::make_shared<impl>()) {
  impl_->settings = settings_;
  impl_->instance = std::move(instance);
  // Where Redis is comes from the URL as it is now; a file reference's
  // credentials are read again at each connection, so that a rotated
  // password counts from the next one.
  impl_->url = secrets::secret_value(settings_.url);
  std::string error;
  if (auto url = impl_->url.get(error))
    impl_->endpoint = parse_redis_url(*url, impl_->url_error);
  else
    impl_->url_error = "redis.url: " + error;
  impl_->last_error = "not connected yet";
}

redis_client::~redis_client() {
  stop();
}

void redis_client::observe_round_trips(std::shared_ptr<metrics::registry> registry) {
  if (impl_->io.joinable() || !registry)
    return;
  impl_->round_trips = &registry->histogram("bulwark_redis_round_trip_seconds", {});
  impl_->registry = std::move(registry);
}

void redis_client::start() {
  if (impl_->io.joinable())
    return;
  if (!impl_->url_error.empty()) {
    impl_->last_error = "bad URL: " + impl_->url_error;
    return;
  }
  impl_->io = std::thread([i = impl_] { i->run_io(); });
  impl_->sub = std::thread([i = impl_] { i->run_subscriber(); });
}

void redis_client::stop() {
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->io.joinable())
    impl_->io.join();
  if (impl_->sub.joinable())
    impl_->sub.join();
  impl_->up = false;
}

bool redis_client::available() const noexcept {
  return impl_->up.load(std::memory_order_relaxed);
}

bool redis_client::settled() const noexcept {
  return impl_->settled.load(std::memory_order_acquire);
}

void redis_client::command(std::vector<std::string> args, redis_callback done) {
  enqueue(std::move(args), std::move(done), nullptr);
}

void redis_client::enqueue(std::vector<std::string> args, redis_callback done, const redis_script* script) {
  {
    std::unique_lock<std::mutex> lock(impl_->mtx);
    // A Redis that falls behind must not collect work without bound: what
    // does not fit is decided locally.
    if (impl_->up && !impl_->stopping && impl_->queue.size() < max_queued) {
      bool was_empty = impl_->queue.empty();
      impl_->queue.push_back(impl::pending{std::move(args), std::move(done), script});
      lock.unlock();
      // A queue that was not empty already woke the I/O thread, which takes
      // everything queued before it sends. (All: the subscriber thread may
      // wait on the same condition while it reconnects.)
      if (was_empty)
        impl_->cv.notify_all();
      return;
    }
  }
  auto why = problem();
  done(redis_reply::error(why.empty() ? "redis client queue full" : "redis unavailable: " + why));
}

void redis_client::eval(const redis_script& script, const std::vector<std::string>& keys,
                        const std::vector<std::string>& args, redis_callback done) {
  std::vector<std::string> fast;
  fast.reserve(3 + keys.size() + args.size());
  fast.push_back("EVALSHA");
  fast.push_back(script.sha1);
  fast.push_back(std::to_string(keys.size()));
  fast.insert(fast.end(), keys.begin(), keys.end());
  fast.insert(fast.end(), args.begin(), args.end());
  enqueue(std::move(fast), std::move(done), &script);
}

void redis_client::publish(const std::string& channel, const std::string& message) {
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    ++impl_->published;
  }
  command({"PUBLISH", key(channel), message}, [](redis_reply) {});
}

void redis_client::subscribe(const std::string& channel, std::function<void(const std::string&)> on_message) {
  impl_->channels[key(channel)] = std::move(on_message);
}

void redis_client::on_resubscribed(std::function<void()> f) {
  impl_->resubscribed.push_back(std::move(f));
}

void redis_client::on_connected(std::function<void()> f) {
  impl_->connected.push_back(std::move(f));
}

const std::string& redis_client::instance() const noexcept {
  return impl_->instance;
}

std::string redis_client::problem() const {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  return impl_->up ? std::string() : impl_->last_error;
}

json::value redis_client::status() const {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  auto& i = *impl_;
  return value::make_object(
    {{"breaker", i.up ? "closed" : "open"},
     {"available", i.up.load()},
     {"subscribed", i.subscribed.load()},
     {"endpoint", i.endpoint.host + ":" + std::to_string(i.endpoint.port) + "/" + std::to_string(i.endpoint.db)},
     {"keyPrefix", settings_.key_prefix},
     {"instance", i.instance},
     {"queued", static_cast<unsigned long long>(i.queue.size())},
     {"sent", static_cast<unsigned long long>(i.sent)},
     {"failed", static_cast<unsigned long long>(i.failed)},
     {"outages", static_cast<unsigned long long>(i.outages)},
     {"published", static_cast<unsigned long long>(i.published)},
     {"received", static_cast<unsigned long long>(i.received)},
     {"error", i.last_error}});
}

} // namespace bulwark
