// The task book: what tasks/get shows of a task in each status, who may
// see it, the bound per identity, time to live, and a runner that stops.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "actors/task_store.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using test::parse;
using namespace std::chrono_literals;

namespace {

const caf::actor_addr nobody{};

} // namespace

TEST_CASE("task book: a task as tasks/get shows it, in every status", "[tasks]") {
  task_book book;
  auto now = task_book::clock::now();
  auto* t = book.open("key:a", nobody, 7, 60000, 500, 4, now);
  REQUIRE(t);
  auto id = t->id;
  CHECK(id.size() == 32);
  auto v = task_book::view(*t);
  CHECK(v["taskId"].as_string() == id);
  CHECK(v["status"].as_string() == "working");
  CHECK(v["ttlMs"].as_int() == 60000);
  CHECK(v["pollIntervalMs"].as_int() == 500);
  CHECK(v["createdAt"].as_string() == v["lastUpdatedAt"].as_string());
  for (auto* absent : {"result", "error", "inputRequests", "requestState", "resultType"})
    CHECK_FALSE(v.find(absent));

  book.update(id, parse(R"({"status":"input_required","inputRequests":{"1-confirm":{"method":"elicitation/create"}}})"),
              now + 1s);
  v = task_book::view(*book.find(id));
  CHECK(v["status"].as_string() == "input_required");
  CHECK(v["inputRequests"]["1-confirm"]["method"].as_string() == "elicitation/create");
  CHECK(v["lastUpdatedAt"].as_string() != v["createdAt"].as_string());

  book.update(id, parse(R"({"status":"completed","result":{"content":[{"type":"text","text":"done"}]}})"), now + 2s);
  v = task_book::view(*book.find(id));
  CHECK(v["status"].as_string() == "completed");
  CHECK(v["result"]["content"].as_array().at(0)["text"].as_string() == "done");
  CHECK_FALSE(v.find("inputRequests"));
  // An ended task stays as it ended.
  book.update(id, parse(R"({"status":"working"})"), now + 3s);
  CHECK(book.find(id)->status == "completed");

  auto* f = book.open("key:a", nobody, 8, 60000, 500, 4, now);
  book.update(f->id, parse(R"({"status":"failed","statusMessage":"broke","error":{"code":-32603,"message":"broke"}})"),
              now);
  v = task_book::view(*f);
  CHECK(v["error"]["code"].as_int() == -32603);
  CHECK(v["statusMessage"].as_string() == "broke");
  CHECK_FALSE(v.find("result"));
  // A status that is none is ignored.
  auto* w = book.open("key:a", nobody, 9, 60000, 500, 4, now);
  book.update(w->id, parse(R"({"status":"sleeping"})"), now);
  CHECK(w->status == "working");
  // The counts by status follow every change.
  CHECK(book.count("completed") == 1);
  CHECK(book.count("failed") == 1);
  CHECK(book.count("working") == 1);
  CHECK(book.count("input_required") == 0);
  CHECK(book.status()["byStatus"]["working"].as_int() == 1);
}

TEST_CASE("task book: a task belongs to the identity that created it", "[tasks]") {
  task_book book;
  auto* t = book.open("key:a", nobody, 1, 60000, 500, 4, task_book::clock::now());
  CHECK(book.find(t->id, "key:a") == t);
  CHECK(book.find(t->id, "key:b") == nullptr);
  CHECK(book.find("no-such-task", "key:a") == nullptr);
}

TEST_CASE("task book: an identity holds a bounded number; ended tasks make room, running ones never", "[tasks]") {
  task_book book;
  auto now = task_book::clock::now();
  std::vector<std::string> ids;
  for (uint64_t i = 0; i < 3; ++i)
    ids.push_back(book.open("key:a", nobody, i, 60000, 500, 3, now)->id);
  CHECK(book.open("key:a", nobody, 3, 60000, 500, 3, now) == nullptr);
  CHECK(book.open("key:b", nobody, 4, 60000, 500, 3, now) != nullptr); // another caller is not bound by it
  book.update(ids[1], parse(R"({"status":"cancelled"})"), now);
  auto* next = book.open("key:a", nobody, 5, 60000, 500, 3, now);
  REQUIRE(next);
  CHECK(book.find(ids[1]) == nullptr); // the ended one made room
  CHECK(book.count("cancelled") == 0);
  CHECK(book.count("working") == 4); // three of key:a, one of key:b
  CHECK(book.find(ids[0]) != nullptr);
  CHECK(book.open("key:a", nobody, 6, 60000, 500, 3, now) == nullptr);
}

TEST_CASE("task book: tasks go when their time to live is over; running ones are returned to be stopped", "[tasks]") {
  task_book book;
  auto now = task_book::clock::now();
  auto ended = book.open("key:a", nobody, 1, 1000, 500, 4, now)->id;
  book.update(ended, parse(R"({"status":"completed","result":{}})"), now);
  auto running = book.open("key:a", nobody, 2, 1000, 500, 4, now)->id;
  auto lasting = book.open("key:a", nobody, 3, 5000, 500, 4, now)->id;
  CHECK(book.expire(now + 999ms).empty());
  CHECK(book.size() == 3);
  auto stopped = book.expire(now + 1000ms);
  REQUIRE(stopped.size() == 1);
  CHECK(stopped[0].id == running);
  CHECK(stopped[0].serial == 2);
  CHECK(book.find(ended) == nullptr);
  CHECK(book.find(lasting) != nullptr);
  CHECK(book.size() == 1);
  CHECK(book.count("working") == 1);
  CHECK(book.count("completed") == 0);
}

TEST_CASE("task book: a runner that stops fails its tasks that have not ended", "[tasks]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto runner = sys.spawn([] { return caf::behavior{[](int) {}}; });
  auto other = sys.spawn([] { return caf::behavior{[](int) {}}; });
  task_book book;
  auto now = task_book::clock::now();
  auto a = book.open("key:a", runner.address(), 1, 60000, 500, 8, now)->id;
  auto done = book.open("key:a", runner.address(), 2, 60000, 500, 8, now)->id;
  book.update(done, parse(R"({"status":"completed","result":{}})"), now);
  auto elsewhere = book.open("key:a", other.address(), 3, 60000, 500, 8, now)->id;
  auto error = parse(R"({"code":-32003,"message":"the session actor that ran the task stopped"})");
  CHECK(book.runner_down(runner.address(), error, now) == 1);
  auto v = task_book::view(*book.find(a));
  CHECK(v["status"].as_string() == "failed");
  CHECK(v["error"]["code"].as_int() == -32003);
  CHECK(book.find(done)->status == "completed");
  CHECK(book.find(elsewhere)->status == "working");
  caf::anon_send_exit(runner, caf::exit_reason::kill);
  caf::anon_send_exit(other, caf::exit_reason::kill);
}
