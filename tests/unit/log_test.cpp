// The log's redaction layer: secrets in free text and in fields.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "config/log.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using json::value;
using test::parse;

TEST_CASE("redaction: tokens, JWTs, keys, e-mail addresses and secret-named values in free text", "[log]") {
  using log::redact_text;
  CHECK(redact_text("Authorization: Bearer abc.DEF-123_x=") == "Authorization: [REDACTED]");
  CHECK(redact_text("sent bearer 9f8e7d6c5b4a to the service") == "sent bearer [REDACTED] to the service");
  CHECK(redact_text("basic dXNlcjpwYXNz failed") == "basic [REDACTED] failed");
  CHECK(redact_text("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl expired")
        == "token [REDACTED:jwt] expired");
  CHECK(redact_text("key bwk_0123456789abcdef0123456789abcdef and sk-proj0123456789abcdefXYZ")
        == "key [REDACTED:key] and [REDACTED:key]");
  CHECK(redact_text("mail bob.smith+x@example.co.uk now.") == "mail [REDACTED:email] now.");
  CHECK(redact_text("unknown tool: tool-sk-live0123456789abcdefXYZ") == "unknown tool: tool-[REDACTED:key]");
  CHECK(redact_text("task-manager-0123456789abcdef") == "task-manager-0123456789abcdef");
  CHECK(redact_text("password=hunter2&user=bob") == "password=[REDACTED]&user=bob");
  CHECK(redact_text(R"({"client_secret":"s3cr3t","name":"x"})") == R"({"client_secret":"[REDACTED]","name":"x"})");
  CHECK(redact_text(R"(line {\"apiKey\":\"abc123\"})") == R"(line {\"apiKey\":\"[REDACTED]\"})");
  // What is not a secret stays.
  CHECK(redact_text("cache key web\ntools/call\nsearch; 12 entries")
        == "cache key web\ntools/call\nsearch; 12 entries");
  CHECK(redact_text("sk-short and a@b and x@y.z1") == "sk-short and a@b and x@y.z1");
  CHECK(redact_text("the breaker of web is open") == "the breaker of web is open");
}

TEST_CASE("redaction: fields whose names name a secret, at any depth", "[log]") {
  auto v = log::redact(parse(R"({"apiKey":"k1","headers":{"Authorization":"Bearer t0k3n","accept":"*/*"},
    "nested":[{"password":"p"},{"text":"write to ann@example.org"}],"count":3,"tokenSha256":null})"));
  CHECK(v["apiKey"].as_string() == "[REDACTED]");
  CHECK(v["headers"]["Authorization"].as_string() == "[REDACTED]");
  CHECK(v["headers"]["accept"].as_string() == "*/*");
  CHECK(v["nested"].as_array()[0]["password"].as_string() == "[REDACTED]");
  CHECK(v["nested"].as_array()[1]["text"].as_string() == "write to [REDACTED:email]");
  CHECK(v["count"].as_int() == 3);
  CHECK(v["tokenSha256"].is_null()); // nothing to hide
}

TEST_CASE("redaction: configured names and patterns; a bad pattern is refused", "[log]") {
  log::set_redaction({"SSN"}, {R"(\b\d{3}-\d{2}-\d{4}\b)", "internal-[a-z]+"});
  CHECK(log::redact_text("ssn: 123456789") == "ssn: [REDACTED]");
  CHECK(log::redact_text("id 123-45-6789 at internal-db") == "id [REDACTED] at [REDACTED]");
  CHECK(log::redact(parse(R"({"user_ssn":"1"})"))["user_ssn"].as_string() == "[REDACTED]");
  CHECK_THROWS_AS(log::set_redaction({}, {"(unclosed"}), std::invalid_argument);
  // The rules before a refused change stay in force.
  CHECK(log::redact_text("id 123-45-6789") == "id [REDACTED]");
  log::set_redaction({}, {});
  CHECK(log::redact_text("id 123-45-6789") == "id 123-45-6789");
}
