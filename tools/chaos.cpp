// bulwark-chaos: kills Bulwark's actors through the admin API at a chosen
// rate, by name or kind, for a bounded time, and prints what it did.
//
//   bulwark-chaos --url http://127.0.0.1:8080 --rate 2 --duration 30 --kind breaker --kind queue
//   bulwark-chaos --url http://127.0.0.1:8080 --rate 8 --duration 10 --cycle
//
// Victims are picked at random among the running actors that match, or with
// --cycle kind by kind in turn (every kind in the tree, or the --kind ones in
// the order given), so that each kind is hit as often as the others.
//
// The admin token comes from --token or BULWARK_ADMIN_TOKEN. Each kill is one
// line (time, actor, HTTP status); a summary follows. Exit status 0 when
// every kill was accepted, 1 when some were refused, 2 on bad usage.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "messages/json.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using bulwark::json::value;

struct options {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  std::string token;
  double rate = 1;
  double duration = 10;
  std::set<std::string> names, kinds;
  std::vector<std::string> kind_order; ///< --kind values in the order given.
  bool cycle = false;
  unsigned seed = std::random_device{}();
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bulwark-chaos: " << why << "\n"
            << "usage: bulwark-chaos [--url http://HOST:PORT] [--token T] [--rate KILLS_PER_S] [--duration S]\n"
            << "                     [--name ACTOR]... [--kind KIND]... [--cycle] [--seed N]\n"
            << "Without --name or --kind, any actor in the admin API's tree may be killed.\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  if (const char* t = std::getenv("BULWARK_ADMIN_TOKEN"))
    o.token = t;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](double lo, double hi) {
      auto s = next();
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || !(v >= lo && v <= hi))
        usage(a + " must be a number between " + std::to_string(lo) + " and " + std::to_string(hi));
      return v;
    };
    if (a == "--url") {
      auto url = next();
      if (url.rfind("http://", 0) != 0)
        usage("--url must be http://HOST:PORT");
      auto hostport = url.substr(7, url.find('/', 7) == std::string::npos ? std::string::npos : url.find('/', 7) - 7);
      auto colon = hostport.rfind(':');
      if (colon == std::string::npos)
        usage("--url needs a port");
      o.host = hostport.substr(0, colon);
      o.port = hostport.substr(colon + 1);
    } else if (a == "--token") {
      o.token = next();
    } else if (a == "--rate") {
      o.rate = number(0.01, 1000);
    } else if (a == "--duration") {
      o.duration = number(0.1, 86400);
    } else if (a == "--name") {
      o.names.insert(next());
    } else if (a == "--kind") {
      auto kind = next();
      if (o.kinds.insert(kind).second)
        o.kind_order.push_back(kind);
    } else if (a == "--cycle") {
      o.cycle = true;
    } else if (a == "--seed") {
      o.seed = static_cast<unsigned>(number(0, 4294967295.0));
    } else if (a == "--help" || a == "-h") {
      usage("kills actors through the admin API");
    } else {
      usage("unknown option " + a);
    }
  }
  return o;
}

/// One request to the admin API; (status, body), status 0 on a transport error.
std::pair<int, std::string> exchange(const options& o, http::verb verb, const std::string& path,
                                     const std::string& body) {
  try {
    net::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(resolver.resolve(o.host, o.port));
    http::request<http::string_body> req{verb, "/admin/api/" + path, 11};
    req.set(http::field::host, o.host);
    req.set(http::field::content_type, "application/json");
    if (!o.token.empty())
      req.set(http::field::authorization, "Bearer " + o.token);
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return {static_cast<int>(res.result_int()), res.body()};
  } catch (const std::exception& e) {
    return {0, e.what()};
  }
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  std::mt19937 rng(o.seed);
  auto start = std::chrono::steady_clock::now();
  auto end =
    start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.duration));
  auto period =
    std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(1.0 / o.rate));
  std::map<std::string, int> killed, killed_kinds;
  int accepted = 0, refused = 0, skipped = 0;
  std::size_t cursor = 0; // --cycle: the next kind's index
  auto next = start;
  while (next < end) {
    std::this_thread::sleep_until(next);
    next += period;
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto [status, body] = exchange(o, http::verb::get, "actors", "");
    value tree;
    bulwark::json::parse_error err;
    if (status != 200 || !bulwark::json::parse(body, tree, err)) {
      std::cout << "t=" << t << "s cannot list actors: " << (status ? "HTTP " + std::to_string(status) : body) << "\n";
      ++refused;
      continue;
    }
    // Running actors that match, by kind.
    std::map<std::string, std::vector<std::string>> by_kind;
    for (auto& a : tree["actors"].as_array()) {
      const auto& name = a["name"].as_string();
      const auto& kind = a["kind"].as_string();
      if (a["parent"].is_null())
        continue; // the root: nobody would restart it
      bool wanted = o.names.empty() && o.kinds.empty() ? true : o.names.count(name) || o.kinds.count(kind);
      if (wanted && a["state"].as_string() == "running")
        by_kind[kind].push_back(name);
    }
    std::vector<std::string> candidates;
    if (o.cycle) {
      // The next kind in turn that has a running actor.
      std::vector<std::string> order = o.kind_order;
      if (order.empty())
        for (auto& [kind, names] : by_kind)
          order.push_back(kind);
      for (std::size_t tried = 0; tried < order.size() && candidates.empty(); ++tried) {
        auto& kind = order[cursor++ % order.size()];
        if (auto i = by_kind.find(kind); i != by_kind.end())
          candidates = i->second;
      }
    } else {
      for (auto& [kind, names] : by_kind)
        candidates.insert(candidates.end(), names.begin(), names.end());
    }
    if (candidates.empty()) {
      std::cout << "t=" << t << "s nothing to kill (none running that matches)\n";
      ++skipped;
      continue;
    }
    auto victim = candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng)];
    auto kill =
      exchange(o, http::verb::post, "actors/kill", bulwark::json::dump(value::make_object({{"name", victim}})));
    std::cout << "t=" << t << "s kill " << victim << " -> "
              << (kill.first ? "HTTP " + std::to_string(kill.first) : kill.second) << "\n";
    if (kill.first == 200) {
      ++accepted;
      ++killed[victim];
      for (auto& [kind, names] : by_kind)
        if (std::find(names.begin(), names.end(), victim) != names.end())
          ++killed_kinds[kind];
    } else {
      ++refused;
    }
  }
  std::cout << "summary: kills=" << accepted << " refused=" << refused << " skipped=" << skipped;
  for (auto& [name, n] : killed)
    std::cout << " " << name << "=" << n;
  std::cout << "\nby kind:";
  for (auto& [kind, n] : killed_kinds)
    std::cout << " " << kind << "=" << n;
  std::cout << "\n";
  return refused == 0 ? 0 : 1;
}
