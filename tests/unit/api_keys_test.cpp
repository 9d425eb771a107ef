// API keys: the key file's strict parsing (errors name the member's path),
// its atomic 0600 writing, the key store's lookup (only a live key's exact
// hash matches) and reloads, and the bearer authenticator's verdicts.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/api_keys.hpp"
#include "config/config.hpp"
#include "messages/crypto.hpp"
#include "transport/auth.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

namespace {

/// A scratch directory, removed with its files at the end.
struct scratch_dir {
  std::string path;

  scratch_dir() {
    char tmpl[] = "/tmp/bulwark-keys-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }

  ~scratch_dir() {
    for (auto& f : files())
      ::unlink((path + "/" + f).c_str());
    ::rmdir(path.c_str());
  }

  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
      while (auto* e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
          out.push_back(e->d_name);
      ::closedir(d);
    }
    return out;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

api_key make_key(const std::string& name, const std::string& key, const std::string& tier = "free") {
  api_key k;
  k.name = name;
  k.sha256 = crypto::sha256_hex(key);
  k.tier = tier;
  k.created = "2025-01-01T00:00:00Z";
  return k;
}

std::string error_of(const std::string& text, const std::set<std::string>& tiers = {}) {
  try {
    parse_key_file(text, "k.json", tiers);
  } catch (const config_error& e) {
    return e.what();
  }
  return {};
}

const std::string hash_a(64, 'a');

} // namespace

TEST_CASE("a key file parses with every member and round-trips through its text", "[api_keys]") {
  auto text = R"({"keys":[
    {"name":"ci","sha256":")"
              + hash_a + R"(","tier":"paid","priority":"high",
     "policy":{"allow":["mem:*"],"deny":["mem:delete_*"]},"created":"2025-01-01T00:00:00Z"},
    {"name":"old.key","sha256":")"
              + std::string(64, 'b') + R"(","tier":"free","created":"x","revoked":"2025-02-01T00:00:00Z"}]})";
  auto f = parse_key_file(text, "k.json", {"free", "paid"});
  REQUIRE(f.keys.size() == 2);
  CHECK(f.keys[0].name == "ci");
  CHECK(f.keys[0].prio == priority::high);
  REQUIRE(f.keys[0].policy);
  CHECK(f.keys[0].policy->allow == std::vector<std::string>{"mem:*"});
  CHECK(f.keys[0].policy->deny == std::vector<std::string>{"mem:delete_*"});
  CHECK(f.keys[0].live());
  CHECK_FALSE(f.keys[1].live());
  auto again = parse_key_file(dump_key_file(f), "again");
  REQUIRE(again.keys.size() == 2);
  CHECK(dump_key_file(again) == dump_key_file(f));
  CHECK(again.keys[1].revoked == "2025-02-01T00:00:00Z");
  CHECK(parse_key_file("{}", "empty").keys.empty());
  CHECK(parse_key_file(dump_key_file(key_file{}), "empty").keys.empty());
}

TEST_CASE("key file errors name the file and the member", "[api_keys]") {
  auto entry = [](const std::string& members) {
    return R"({"keys":[{"name":"a","sha256":")" + hash_a + R"(","tier":"free")" + members + "}]}";
  };
  CHECK(error_of("{\"keys\":").rfind("keys: k.json: ", 0) == 0);
  CHECK(error_of(R"({"key":[]})") == "keys: k.json: $.key: unknown key");
  CHECK(error_of(R"({"keys":{}})") == "keys: k.json: $.keys: must be an array of keys");
  CHECK(error_of(entry(R"(,"colour":"red")")) == "keys: k.json: $.keys[0].colour: unknown key");
  CHECK(error_of(R"({"keys":[{"name":"a","tier":"free"}]})") == "keys: k.json: $.keys[0].sha256: is required");
  CHECK(error_of(R"({"keys":[{"name":"a","sha256":"ABC","tier":"free"}]})")
          .find("$.keys[0].sha256: must be the lower-case hex SHA-256")
        != std::string::npos);
  CHECK(error_of(R"({"keys":[{"name":"a b","sha256":")" + hash_a + R"(","tier":"free"}]})")
          .find("$.keys[0].name: a key name may hold only")
        != std::string::npos);
  CHECK(error_of(entry(R"(,"priority":"urgent")"))
        == "keys: k.json: $.keys[0].priority: must be one of critical, high, normal, low");
  CHECK(error_of(entry(R"(,"policy":{"allow":["nocolon"]})")).find("$.keys[0].policy.allow: each pattern")
        != std::string::npos);
  CHECK(error_of(entry(R"(,"policy":{"permit":[]})")) == "keys: k.json: $.keys[0].policy.permit: unknown key");
  CHECK(error_of(entry(R"(,"revoked":3)")).find("$.keys[0].revoked:") != std::string::npos);
  CHECK(error_of(entry(""), {"paid"}).find("$.keys[0].tier: no tier named 'free' in rateLimits.tiers (paid)")
        != std::string::npos);
  auto two = R"({"keys":[{"name":"a","sha256":")" + hash_a + R"(","tier":"free"},{"name":"a","sha256":")"
             + std::string(64, 'c') + R"(","tier":"free"}]})";
  CHECK(error_of(two) == "keys: k.json: $.keys[1].name: another key is named 'a'");
  auto same = R"({"keys":[{"name":"a","sha256":")" + hash_a + R"(","tier":"free"},{"name":"b","sha256":")" + hash_a
              + R"(","tier":"free"}]})";
  CHECK(error_of(same) == "keys: k.json: $.keys[1].sha256: another key has the same hash");
  // A hand edit may say `revoked: true`.
  auto by_hand = parse_key_file(entry(R"(,"revoked":true)"), "k");
  CHECK_FALSE(by_hand.keys[0].live());
  CHECK(dump_key_file(by_hand).find(R"("revoked":true)") != std::string::npos);
  CHECK(parse_key_file(entry(R"(,"revoked":false)"), "k").keys[0].live());
}

TEST_CASE("the key file is written whole, with mode 0600, and nothing else is left behind", "[api_keys]") {
  scratch_dir dir;
  auto path = dir.path + "/keys.json";
  // An existing file with looser permissions is replaced by a 0600 one.
  spit(path, "{}");
  ::chmod(path.c_str(), 0644);
  key_file f;
  f.keys.push_back(make_key("one", "bwk_secret_one"));
  write_key_file(path, f);
  CHECK(mode_of(path) == 0600);
  CHECK(dir.files() == std::vector<std::string>{"keys.json"});
  auto text = slurp(path);
  CHECK(text.find("bwk_secret_one") == std::string::npos);
  CHECK(text.find(crypto::sha256_hex("bwk_secret_one")) != std::string::npos);
  auto back = read_key_file(path);
  REQUIRE(back.keys.size() == 1);
  CHECK(back.keys[0].name == "one");
  f.keys.push_back(make_key("two", "bwk_secret_two"));
  write_key_file(path, f);
  CHECK(read_key_file(path).keys.size() == 2);
  CHECK(dir.files().size() == 1);
  CHECK_THROWS_AS(write_key_file(dir.path + "/missing/keys.json", f), std::system_error);
  CHECK_THROWS_AS(read_key_file(dir.path + "/nothing.json"), config_error);
}

TEST_CASE("generated keys are prefixed, long and new each time", "[api_keys]") {
  auto a = generate_api_key(), b = generate_api_key();
  CHECK(a.rfind("bwk_", 0) == 0);
  CHECK(a.size() == 4 + 64);
  CHECK(a.find_first_not_of("0123456789abcdef", 4) == std::string::npos);
  CHECK(a != b);
  CHECK(check_key_name("ci-runner_2.prod").empty());
  CHECK_FALSE(check_key_name("").empty());
  CHECK_FALSE(check_key_name(std::string(65, 'x')).empty());
  CHECK_FALSE(check_key_name("a/b").empty());
}

TEST_CASE("the key store finds live keys by exact hash only", "[api_keys]") {
  scratch_dir dir;
  auto path = dir.path + "/keys.json";
  key_file f;
  f.keys.push_back(make_key("live", "bwk_live", "paid"));
  f.keys.back().prio = priority::low;
  f.keys.push_back(make_key("gone", "bwk_gone"));
  f.keys.back().revoked = "2025-01-02T00:00:00Z";
  write_key_file(path, f);
  key_store store(path, {"free", "paid"}, 0ms);
  CHECK(store.size() == 1);
  auto k = store.authenticate("bwk_live");
  REQUIRE(k);
  CHECK(k->name == "live");
  CHECK(k->tier == "paid");
  CHECK(k->prio == priority::low);
  CHECK_FALSE(store.authenticate("bwk_gone"));
  CHECK_FALSE(store.authenticate("bwk_liv"));
  CHECK_FALSE(store.authenticate("bwk_live "));
  CHECK_FALSE(store.authenticate(""));
  // Presenting the stored hash as the key does not work: it gets hashed.
  CHECK_FALSE(store.authenticate(crypto::sha256_hex("bwk_live")));
  auto hash = crypto::sha256_hex("bwk_live");
  CHECK(store.find(hash));
  CHECK_FALSE(store.find(hash.substr(0, 63)));
  CHECK_FALSE(store.find(hash + "0"));
  std::string upper = hash;
  for (auto& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK_FALSE(store.find(upper));
  CHECK_FALSE(store.find(crypto::sha256_hex("bwk_gone")));
  // The comparison it relies on.
  CHECK(crypto::constant_time_equal(hash, crypto::sha256_hex("bwk_live")));
  CHECK_FALSE(crypto::constant_time_equal(hash, upper));
  CHECK_FALSE(crypto::constant_time_equal(hash, hash.substr(1)));
}

TEST_CASE("the key store follows its file: revocations, new keys, and bad versions kept out", "[api_keys]") {
  scratch_dir dir;
  auto path = dir.path + "/keys.json";
  key_file f;
  f.keys.push_back(make_key("a", "bwk_a"));
  write_key_file(path, f);
  key_store store(path, {"free"}, 0ms);
  REQUIRE(store.authenticate("bwk_a"));
  CHECK_FALSE(store.reload()); // unchanged

  f.keys.push_back(make_key("b", "bwk_b"));
  f.keys[0].revoked = "2025-01-03T00:00:00Z";
  write_key_file(path, f);
  CHECK_FALSE(store.authenticate("bwk_a")); // authenticate looks at the file (interval 0)
  CHECK(store.authenticate("bwk_b"));

  // A malformed version keeps the previous keys; so does an unknown tier.
  spit(path, "{\"keys\": [");
  CHECK_FALSE(store.reload());
  CHECK(store.authenticate("bwk_b"));
  f.keys.push_back(make_key("c", "bwk_c", "gold"));
  write_key_file(path, f);
  CHECK_FALSE(store.reload());
  CHECK(store.authenticate("bwk_b"));
  CHECK_FALSE(store.authenticate("bwk_c"));
  // A deleted file too.
  ::unlink(path.c_str());
  CHECK_FALSE(store.reload());
  CHECK(store.authenticate("bwk_b"));
  // A good version again is taken.
  f.keys.pop_back();
  f.keys[1].revoked = "2025-01-04T00:00:00Z";
  write_key_file(path, f);
  CHECK(store.reload());
  CHECK(store.size() == 0);
}

TEST_CASE("the key store looks at its file at most once per interval", "[api_keys]") {
  scratch_dir dir;
  auto path = dir.path + "/keys.json";
  key_file f;
  f.keys.push_back(make_key("a", "bwk_a"));
  write_key_file(path, f);
  key_store store(path, {}, 1h);
  f.keys[0].revoked = "now";
  write_key_file(path, f);
  CHECK(store.authenticate("bwk_a")); // the interval has not passed
  CHECK(store.reload()); // an explicit look sees it at once
  CHECK_FALSE(store.authenticate("bwk_a"));
}

TEST_CASE("a server does not start on a bad key file", "[api_keys]") {
  scratch_dir dir;
  auto path = dir.path + "/keys.json";
  spit(path, R"({"keys":[{"name":"a","sha256":"short","tier":"free"}]})");
  try {
    key_store store(path, {"free"});
    FAIL("expected a config_error");
  } catch (const config_error& e) {
    CHECK(std::string(e.what())
          == "keys: " + path
               + ": $.keys[0].sha256: must be the lower-case hex SHA-256 of "
                 "the key (64 characters), never the key itself");
  }
  CHECK_THROWS_AS(key_store(dir.path + "/none.json", {}), config_error);
}

TEST_CASE("the key authenticator: a live bearer key, else a challenge", "[api_keys]") {
  scratch_dir dir;
  auto path = dir.path + "/keys.json";
  key_file f;
  f.keys.push_back(make_key("a", "bwk_a"));
  write_key_file(path, f);
  auto auth = key_authenticator(std::make_shared<key_store>(path, std::set<std::string>{}, 0ms));
  auto ok = auth->check("Bearer bwk_a");
  CHECK(ok.ok);
  CHECK(ok.identity == "key:" + crypto::sha256_hex("bwk_a"));
  CHECK(auth->check("bearer   bwk_a  ").ok);
  auto none = auth->check("");
  CHECK_FALSE(none.ok);
  CHECK(none.challenge == "Bearer realm=\"bulwark\"");
  CHECK_FALSE(none.message.empty());
  CHECK(auth->check("Basic YTpi").challenge == "Bearer realm=\"bulwark\"");
  CHECK(auth->check("Bearer ").challenge == "Bearer realm=\"bulwark\"");
  auto wrong = auth->check("Bearer bwk_b");
  CHECK_FALSE(wrong.ok);
  CHECK(wrong.identity.empty());
  CHECK(wrong.challenge == "Bearer realm=\"bulwark\", error=\"invalid_token\"");
  CHECK(bearer_token("Bearer abc") == "abc");
  CHECK(bearer_token("BEARER abc ") == "abc");
  CHECK(bearer_token("Bearerabc").empty());
  CHECK(bearer_token("Token abc").empty());
}
