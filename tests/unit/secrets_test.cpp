// Secret references in credential settings: what they stand for, how a
// setting's value is judged, and a file read again when it changes.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/secrets.hpp"

using namespace bulwark;

namespace {

std::string temp_path(const char* name) {
  return "/tmp/bulwark-unit-" + std::to_string(getpid()) + "-" + name;
}

} // namespace

TEST_CASE("secret references: ${env:NAME} and ${file:PATH} stand for their values", "[secrets]") {
  std::string error;
  CHECK(secrets::resolve("plain value", error) == "plain value");
  ::setenv("BULWARK_UNIT_SECRET", "from-env", 1);
  CHECK(secrets::resolve("${env:BULWARK_UNIT_SECRET}", error) == "from-env");
  ::unsetenv("BULWARK_UNIT_SECRET");
  CHECK_FALSE(secrets::resolve("${env:BULWARK_UNIT_SECRET}", error));
  CHECK(error.find("BULWARK_UNIT_SECRET") != std::string::npos);
  auto path = temp_path("secret");
  std::ofstream(path) << "from-file\n";
  CHECK(secrets::resolve("${file:" + path + "}", error) == "from-file");
  std::remove(path.c_str());
  CHECK_FALSE(secrets::resolve("${file:" + path + "}", error));
  CHECK(secrets::resolve("${env:}", error) == "${env:}"); // not a reference
}

TEST_CASE("secret references: a setting's value is refused with the reason, never with the value", "[secrets]") {
  CHECK(secrets::check("Bearer abc").empty());
  CHECK(secrets::check("").empty());
  CHECK(secrets::check("${vault:kv/x}").find("unknown kind") != std::string::npos);
  CHECK(secrets::check("${env:}") == "names no variable or file");
  CHECK(secrets::check("${file:}") == "names no variable or file");
  ::unsetenv("BULWARK_UNIT_UNSET");
  CHECK(secrets::check("${env:BULWARK_UNIT_UNSET}") == "the environment variable BULWARK_UNIT_UNSET is not set");
  ::setenv("BULWARK_UNIT_SET", "hunter2", 1);
  CHECK(secrets::check("${env:BULWARK_UNIT_SET}").empty());
  ::unsetenv("BULWARK_UNIT_SET");
  CHECK(secrets::check("${file:/proc/bulwark-unit/none}").find("cannot read") != std::string::npos);
  CHECK(secrets::is_reference("${x}"));
  CHECK_FALSE(secrets::is_reference("$x}"));
  CHECK_FALSE(secrets::is_reference("{x}"));
}

TEST_CASE("secret references: a file is read again when it changes, and kept when it goes", "[secrets]") {
  using namespace std::chrono_literals;
  auto path = temp_path("rotating");
  std::ofstream(path) << "first\n";
  secrets::secret_value v("${file:" + path + "}");
  std::string error;
  CHECK(v.get(error) == "first");
  CHECK(error.empty());
  // Rewritten (another length): seen once a second has passed, not before.
  std::ofstream(path) << "second-key\n";
  CHECK(v.get(error) == "first");
  std::this_thread::sleep_for(1100ms);
  CHECK(v.get(error) == "second-key");
  // Gone: the last contents serve, and the error says so once.
  std::remove(path.c_str());
  std::this_thread::sleep_for(1100ms);
  error.clear();
  CHECK(v.get(error) == "second-key");
  CHECK(error.find("last contents") != std::string::npos);
  error.clear();
  std::this_thread::sleep_for(1100ms);
  CHECK(v.get(error) == "second-key");
  CHECK(error.empty());
  // Never readable: nothing.
  secrets::secret_value missing("${file:" + path + "}");
  CHECK_FALSE(missing.get(error));
  CHECK(error.find("cannot read") != std::string::npos);
  // A literal and a variable.
  CHECK(secrets::secret_value("literal").get(error) == "literal");
  ::setenv("BULWARK_UNIT_SECRET_V", "v1", 1);
  secrets::secret_value var("${env:BULWARK_UNIT_SECRET_V}");
  CHECK(var.get(error) == "v1");
  ::unsetenv("BULWARK_UNIT_SECRET_V");
}

TEST_CASE("secret references: a client's literal headers are fixed, its referenced ones read per request",
          "[secrets]") {
  using namespace std::chrono_literals;
  auto path = temp_path("header");
  std::ofstream(path) << "Bearer one\n";
  ::setenv("BULWARK_UNIT_HEADER", "v2", 1);
  secrets::secret_headers h(
    {{"A", "v1"}, {"Authorization", "${file:" + path + "}"}, {"B", "${env:BULWARK_UNIT_HEADER}"}});
  using list = secrets::secret_headers::list;
  CHECK(h.fixed() == list{{"A", "v1"}});
  list out{{"Accept", "application/json"}};
  std::string error;
  h.add_to(out, error);
  CHECK(out == list{{"Accept", "application/json"}, {"Authorization", "Bearer one"}, {"B", "v2"}});
  CHECK(error.empty());
  ::unsetenv("BULWARK_UNIT_HEADER"); // a variable is read once, at first use
  // The file rotated: the next request after a second carries the new value.
  std::ofstream(path) << "Bearer second\n";
  std::this_thread::sleep_for(1100ms);
  out.clear();
  h.add_to(out, error);
  CHECK(out == list{{"Authorization", "Bearer second"}, {"B", "v2"}});
  // Never readable: left out, and the error names the header only.
  std::remove(path.c_str());
  secrets::secret_headers gone({{"Authorization", "${file:" + path + "}"}});
  out.clear();
  error.clear();
  gone.add_to(out, error);
  CHECK(out.empty());
  CHECK(error == "header Authorization: cannot read " + path);
}
