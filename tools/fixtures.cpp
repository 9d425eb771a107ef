// The conformance fixtures: exactly the tools, resources and prompts the
// official MCP conformance suite exercises, registered through the public
// API. Handlers that need client input are written once, in the multi
// round-trip style: a 2026-07-28 client gets an input_required result, and a
// 2025-era client is asked by the session actor on the request's stream.
#include <atomic>

#include "actors/runtime.hpp"
#include "messages/mcp.hpp"
#include "tools/builtin_tools.hpp"

namespace bulwark {

using json::value;

namespace {

// A 1x1 red PNG.
const char* png_base64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A short silent 8 kHz mono WAV.
std::string wav_base64() {
  std::string wav;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i)
      wav.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  auto u16 = [&](uint16_t v) {
    wav.push_back(static_cast<char>(v & 0xFF));
    wav.push_back(static_cast<char>(v >> 8));
  };
  const uint32_t samples = 80;
  wav += "RIFF";
  u32(36 + samples);
  wav += "WAVEfmt ";
  u32(16);
  u16(1); // PCM
  u16(1); // mono
  u32(8000); // sample rate
  u32(8000); // byte rate
  u16(1); // block align
  u16(8); // bits per sample
  wav += "data";
  u32(samples);
  wav.append(samples, static_cast<char>(0x80));
  return mcp::base64_encode(wav);
}

value object_schema(std::initializer_list<std::pair<std::string, value>> props,
                    std::initializer_list<value> required = {}) {
  value p(json::object{});
  for (auto& [k, v] : props)
    p.set(k, v);
  auto s = value::make_object({{"type", "object"}, {"properties", std::move(p)}});
  if (required.size() > 0)
    s.set("required", value(json::array(required)));
  return s;
}

value string_type(const char* description = nullptr) {
  auto s = value::make_object({{"type", "string"}});
  if (description)
    s.set("description", description);
  return s;
}

value content_image() {
  return value::make_object({{"type", "image"}, {"data", png_base64}, {"mimeType", "image/png"}});
}

value elicit(std::string message, value schema) {
  return value::make_object(
    {{"method", "elicitation/create"},
     {"params", value::make_object({{"message", std::move(message)}, {"requestedSchema", std::move(schema)}})}});
}

value sample(std::string text, int max_tokens) {
  auto msg = value::make_object({{"role", "user"}, {"content", mcp::text_content(std::move(text))}});
  return value::make_object(
    {{"method", "sampling/createMessage"},
     {"params", value::make_object({{"messages", value::make_array({msg})}, {"maxTokens", max_tokens}})}});
}

value list_roots() {
  return value::make_object({{"method", "roots/list"}, {"params", value(json::object{})}});
}

value requests(std::initializer_list<std::pair<std::string, value>> items) {
  value r(json::object{});
  for (auto& [k, v] : items)
    r.set(k, v);
  return r;
}

/// An accepted elicitation answer's `content.<field>` as a string, if any.
const value* accepted(const call_ptr& c, std::string_view key, std::string_view field) {
  auto* r = c->input_response(key);
  if (!r || !r->is_object() || (*r)["action"].as_string() != "accept")
    return nullptr;
  auto* v = (*r)["content"].find(field);
  return v && !v->is_null() ? v : nullptr;
}

std::string sampled_text(const call_ptr& c, std::string_view key) {
  auto* r = c->input_response(key);
  if (!r)
    return {};
  const auto& content = (*r)["content"];
  if (content.is_array() && !content.as_array().empty())
    return content.as_array().front()["text"].as_string();
  return content["text"].as_string();
}

void add(runtime& rt, std::string name, std::string description, value schema, call_handler h) {
  tool_spec t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.input_schema = schema.is_null() ? value::make_object({{"type", "object"}}) : std::move(schema);
  t.handler = std::move(h);
  rt.add_tool(std::move(t));
}

value missing_capability(std::string_view cap) {
  return value::make_object(
    {{"requiredCapabilities", value::make_object({{std::string(cap), value(json::object{})}})}});
}

/// A tool whose calls may run as tasks.
void add_task_tool(runtime& rt, std::string name, std::string description, value schema, task_support support,
                   call_handler h) {
  tool_spec t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.input_schema = schema.is_null() ? value::make_object({{"type", "object"}}) : std::move(schema);
  t.tasks = support;
  t.handler = std::move(h);
  rt.add_tool(std::move(t));
}

/// The tasks extension's fixtures. A call becomes a task when its handler
/// does not answer in its first run (it schedules more with `after`).
void register_task_tools(runtime& rt) {
  using std::chrono::milliseconds;
  add(rt, "greet", "Says hello (never a task).", object_schema({{"name", string_type()}}, {"name"}),
      [](const call_ptr& c) { c->finish(mcp::text_result("Hello, " + c->arguments()["name"].as_string() + "!")); });
  auto number = value::make_object({{"type", "number"}, {"minimum", 0}, {"maximum", 3600}});
  add_task_tool(rt, "slow_compute", "Answers after `seconds` (at once for 0); a task when it waits.",
                object_schema({{"seconds", number}, {"label", string_type()}}, {}), task_support::optional,
                [](const call_ptr& c) {
                  auto seconds = c->arguments()["seconds"].as_double();
                  auto label = c->arguments()["label"].as_string();
                  auto answer = [label](const call_ptr& c) { c->finish(mcp::text_result("computed " + label)); };
                  if (seconds <= 0)
                    return answer(c);
                  c->after(milliseconds(static_cast<int64_t>(seconds * 1000)), answer);
                });
  auto confirm_schema = object_schema({{"confirm", value::make_object({{"type", "boolean"}})}}, {"confirm"});
  add_task_tool(rt, "confirm_delete", "Asks the client to confirm, as a task, then deletes `filename`.",
                object_schema({{"filename", string_type()}}, {}), task_support::optional,
                [confirm_schema](const call_ptr& c) {
                  const auto& file = c->arguments()["filename"].as_string();
                  if (auto* r = c->input_response("confirm")) {
                    bool yes = (*r)["action"].as_string() == "accept" && (*r)["content"]["confirm"].as_bool();
                    return c->finish(mcp::text_result(yes ? "deleted " + file : "kept " + file));
                  }
                  c->after(milliseconds(10), [confirm_schema, file](const call_ptr& c) {
                    c->require_input(requests({{"confirm", elicit("Delete " + file + "?", confirm_schema)}}));
                  });
                });
  add_task_tool(rt, "failing_job", "Fails as a tool after half a second; runs only as a task.", {},
                task_support::required, [](const call_ptr& c) {
                  c->after(milliseconds(500),
                           [](const call_ptr& c) { c->finish(mcp::text_result("the job failed", true)); });
                });
  add_task_tool(rt, "protocol_error_job", "Fails with a JSON-RPC error, as a task.", {}, task_support::optional,
                [](const call_ptr& c) {
                  c->after(milliseconds(100),
                           [](const call_ptr& c) { c->fail(error_code::internal_error, "the job broke down"); });
                });
  auto name_schema = object_schema({{"name", string_type()}}, {"name"});
  add_task_tool(rt, "multi_input", "Asks two questions at once, as a task.", {}, task_support::optional,
                [name_schema, confirm_schema](const call_ptr& c) {
                  auto* name = accepted(c, "name", "name");
                  auto* confirm = c->input_response("confirm");
                  if (name && confirm)
                    return c->finish(mcp::text_result("got " + name->as_string() + " and a confirmation"));
                  c->after(milliseconds(10), [name_schema, confirm_schema](const call_ptr& c) {
                    c->require_input(requests(
                      {{"name", elicit("Your name?", name_schema)}, {"confirm", elicit("Go on?", confirm_schema)}}));
                  });
                });
  add_task_tool(rt, "test_tool_with_task", "Asks for a name on the request, then answers as a task.", {},
                task_support::required, [name_schema](const call_ptr& c) {
                  auto* name = accepted(c, "user_name", "name");
                  if (!name || !name->is_string())
                    return c->require_input(requests({{"user_name", elicit("What is your name?", name_schema)}}));
                  c->after(milliseconds(10), [greeting = "Hello, " + name->as_string() + "!"](const call_ptr& c) {
                    c->finish(mcp::text_result(greeting));
                  });
                });
}

void register_tools(runtime& rt) {
  // test_simple_text stays first: some checks call the first listed tool.
  add(rt, "test_simple_text", "Returns a simple text response.", {},
      [](const call_ptr& c) { c->finish(mcp::text_result("This is a simple text response for testing.")); });
  add(rt, "test_image_content", "Returns an image.", {}, [](const call_ptr& c) {
    c->finish(value::make_object({{"content", value::make_array({content_image()})}}));
  });
  static const std::string wav = wav_base64();
  add(rt, "test_audio_content", "Returns audio.", {}, [](const call_ptr& c) {
    c->finish(value::make_object({{"content", value::make_array({value::make_object(
                                                {{"type", "audio"}, {"data", wav}, {"mimeType", "audio/wav"}})})}}));
  });
  add(rt, "test_embedded_resource", "Returns an embedded resource.", {}, [](const call_ptr& c) {
    auto res = value::make_object({{"uri", "test://embedded-resource"},
                                   {"mimeType", "text/plain"},
                                   {"text", "This is an embedded resource content."}});
    c->finish(value::make_object(
      {{"content", value::make_array({value::make_object({{"type", "resource"}, {"resource", res}})})}}));
  });
  add(rt, "test_multiple_content_types", "Returns text, an image and a resource.", {}, [](const call_ptr& c) {
    auto res = value::make_object({{"uri", "test://mixed-content-resource"},
                                   {"mimeType", "application/json"},
                                   {"text", R"({"test":"data","value":123})"}});
    c->finish(value::make_object(
      {{"content", value::make_array({mcp::text_content("Multiple content types test:"), content_image(),
                                      value::make_object({{"type", "resource"}, {"resource", res}})})}}));
  });
  add(rt, "test_error_handling", "Always fails with a tool error.", {},
      [](const call_ptr&) { throw tool_error("This tool intentionally returns an error for testing"); });
  add(rt, "test_tool_with_progress", "Reports progress 0, 50 and 100 of 100.", {}, [](const call_ptr& c) {
    c->progress(0, 100);
    c->after(std::chrono::milliseconds(50), [](const call_ptr& c) {
      c->progress(50, 100);
      c->after(std::chrono::milliseconds(50), [](const call_ptr& c) {
        c->progress(100, 100);
        c->finish(mcp::text_result("Progress test completed"));
      });
    });
  });
  add(rt, "test_tool_with_logging", "Sends three log messages while it runs.", {}, [](const call_ptr& c) {
    c->log(log_level::info, "Tool execution started");
    c->after(std::chrono::milliseconds(50), [](const call_ptr& c) {
      c->log(log_level::info, "Tool processing data");
      c->after(std::chrono::milliseconds(50), [](const call_ptr& c) {
        c->log(log_level::info, "Tool execution completed");
        c->finish(mcp::text_result("Logging test completed"));
      });
    });
  });
  add(rt, "test_sampling", "Asks the client's LLM to answer a prompt.",
      object_schema({{"prompt", string_type("The prompt to send to the LLM")}}, {"prompt"}), [](const call_ptr& c) {
        if (c->input_response("sampling"))
          return c->finish(mcp::text_result("LLM response: " + sampled_text(c, "sampling")));
        if (!c->client().has_capability("sampling"))
          return c->fail(error_code::missing_client_capability, "test_sampling needs the client's sampling capability",
                         missing_capability("sampling"));
        c->require_input(requests({{"sampling", sample(c->arguments()["prompt"].as_string(), 100)}}));
      });
  add(rt, "test_elicitation", "Asks the user for a username and an email address.",
      object_schema({{"message", string_type("The message to show the user")}}, {"message"}), [](const call_ptr& c) {
        if (auto* r = c->input_response("user_info"))
          return c->finish(mcp::text_result("User response: action=" + (*r)["action"].as_string()
                                            + ", content=" + json::dump((*r)["content"])));
        if (!c->client().has_capability("elicitation"))
          return c->fail(error_code::missing_client_capability,
                         "test_elicitation needs the client's elicitation capability",
                         missing_capability("elicitation"));
        c->require_input(requests({{"user_info", elicit(c->arguments()["message"].as_string(),
                                                        object_schema({{"username", string_type("User's response")},
                                                                       {"email", string_type("User's email address")}},
                                                                      {"username", "email"}))}}));
      });
  add(rt, "test_elicitation_sep1034_defaults", "Elicitation with defaults for every primitive type.", {},
      [](const call_ptr& c) {
        if (auto* r = c->input_response("defaults"))
          return c->finish(mcp::text_result("Elicitation completed: action=" + (*r)["action"].as_string()
                                            + ", content=" + json::dump((*r)["content"])));
        auto schema = object_schema({
          {"name", value::make_object({{"type", "string"}, {"default", "John Doe"}})},
          {"age", value::make_object({{"type", "integer"}, {"default", 30}})},
          {"score", value::make_object({{"type", "number"}, {"default", 95.5}})},
          {"status", value::make_object({{"type", "string"},
                                         {"enum", value::make_array({"active", "inactive", "pending"})},
                                         {"default", "active"}})},
          {"verified", value::make_object({{"type", "boolean"}, {"default", true}})},
        });
        schema.set("required", value(json::array{}));
        c->require_input(
          requests({{"defaults", elicit("Please review and update the form fields with defaults", schema)}}));
      });
  add(rt, "test_elicitation_sep1330_enums", "Elicitation with all five enum schema variants.", {},
      [](const call_ptr& c) {
        if (auto* r = c->input_response("enums"))
          return c->finish(mcp::text_result("Elicitation completed: action=" + (*r)["action"].as_string()
                                            + ", content=" + json::dump((*r)["content"])));
        auto titled = [](const char* v, const char* t) { return value::make_object({{"const", v}, {"title", t}}); };
        auto schema = object_schema({
          {"untitledSingle",
           value::make_object({{"type", "string"}, {"enum", value::make_array({"option1", "option2", "option3"})}})},
          {"titledSingle", value::make_object({{"type", "string"},
                                               {"oneOf", value::make_array({titled("value1", "First Option"),
                                                                            titled("value2", "Second Option"),
                                                                            titled("value3", "Third Option")})}})},
          {"legacyEnum",
           value::make_object({{"type", "string"},
                               {"enum", value::make_array({"opt1", "opt2", "opt3"})},
                               {"enumNames", value::make_array({"Option One", "Option Two", "Option Three"})}})},
          {"untitledMulti",
           value::make_object(
             {{"type", "array"},
              {"minItems", 1},
              {"maxItems", 3},
              {"items", value::make_object(
                          {{"type", "string"}, {"enum", value::make_array({"option1", "option2", "option3"})}})}})},
          {"titledMulti",
           value::make_object(
             {{"type", "array"},
              {"minItems", 1},
              {"maxItems", 3},
              {"items", value::make_object({{"anyOf", value::make_array({titled("value1", "First Choice"),
                                                                         titled("value2", "Second Choice"),
                                                                         titled("value3", "Third Choice")})}})}})},
        });
        c->require_input(requests({{"enums", elicit("Please choose from the enum fields", schema)}}));
      });

  // -- 2026-07-28 server-stateless fixtures ------------------------------------------------
  add(rt, "test_missing_capability", "Needs the client's sampling capability.", {}, [](const call_ptr& c) {
    if (!c->client().has_capability("sampling"))
      return c->fail(error_code::missing_client_capability,
                     "test_missing_capability needs the client's sampling capability", missing_capability("sampling"));
    if (c->input_response("answer"))
      return c->finish(mcp::text_result("sampled: " + sampled_text(c, "answer")));
    c->require_input(requests({{"answer", sample("Say hello", 20)}}));
  });
  add(rt, "test_streaming_elicitation", "Asks for input through an input_required result.", {}, [](const call_ptr& c) {
    if (auto* name = accepted(c, "user_name", "name"))
      return c->finish(mcp::text_result("Hello, " + name->as_string() + "!"));
    c->require_input(
      requests({{"user_name", elicit("What is your name?", object_schema({{"name", string_type()}}, {"name"}))}}));
  });
  add(rt, "test_logging_tool", "Logs when the request asks for logs.", {}, [](const call_ptr& c) {
    c->log(log_level::info, "logging tool ran");
    c->finish(mcp::text_result("Logging tool completed"));
  });
  auto tool_toggle = std::make_shared<std::atomic<bool>>(false);
  add(rt, "test_trigger_tool_change", "Adds or removes a tool, so the tool list changes.", {},
      [&rt, tool_toggle](const call_ptr& c) {
        if (tool_toggle->exchange(!tool_toggle->load())) {
          rt.remove_tool("test_dynamic_tool");
        } else {
          tool_spec t;
          t.name = "test_dynamic_tool";
          t.description = "Appears and disappears with test_trigger_tool_change.";
          t.input_schema = value::make_object({{"type", "object"}});
          t.handler = [](const call_ptr& c) { c->finish(mcp::text_result("dynamic")); };
          rt.add_tool(std::move(t));
        }
        c->finish(mcp::text_result("tool list changed"));
      });
  add(rt, "test_update_resource", "Reports a resource as updated to the clients that watch it.",
      object_schema({{"uri", string_type()}}, {"uri"}), [&rt](const call_ptr& c) {
        const auto& uri = c->arguments()["uri"].as_string();
        rt.notify_resource_updated(uri);
        c->finish(mcp::text_result("updated " + uri));
      });
  auto prompt_counter = std::make_shared<std::atomic<int>>(0);
  add(rt, "test_trigger_prompt_change", "Adds a prompt, so the prompt list changes.", {},
      [&rt, prompt_counter](const call_ptr& c) {
        prompt_spec p;
        p.name = "test_dynamic_prompt_" + std::to_string(++*prompt_counter);
        p.description = "Added by test_trigger_prompt_change.";
        p.handler = [](const call_ptr& c) {
          c->finish(value::make_object(
            {{"messages", value::make_array(
                            {value::make_object({{"role", "user"}, {"content", mcp::text_content("dynamic")}})})}}));
        };
        rt.add_prompt(std::move(p));
        c->finish(mcp::text_result("prompt list changed"));
      });

  // -- multi round-trip (input_required) fixtures ---------------------------------------------
  auto name_schema = object_schema({{"name", string_type()}}, {"name"});
  add(rt, "test_input_required_result_elicitation", "Asks for the user's name.", {}, [name_schema](const call_ptr& c) {
    if (auto* name = accepted(c, "user_name", "name"); name && name->is_string())
      return c->finish(mcp::text_result("Hello, " + name->as_string() + "!"));
    c->require_input(requests({{"user_name", elicit("What is your name?", name_schema)}}));
  });
  add(rt, "test_input_required_result_sampling", "Asks the client's LLM a question.", {}, [](const call_ptr& c) {
    if (c->input_response("capital_question"))
      return c->finish(mcp::text_result("The model answered: " + sampled_text(c, "capital_question")));
    c->require_input(requests({{"capital_question", sample("What is the capital of France?", 100)}}));
  });
  add(rt, "test_input_required_result_list_roots", "Asks for the client's roots.", {}, [](const call_ptr& c) {
    if (auto* r = c->input_response("client_roots")) {
      std::string uris;
      for (auto& root : (*r)["roots"].as_array())
        uris += (uris.empty() ? "" : ", ") + root["uri"].as_string();
      return c->finish(mcp::text_result("Client roots: " + uris));
    }
    c->require_input(requests({{"client_roots", list_roots()}}));
  });
  auto ok_schema = object_schema({{"ok", value::make_object({{"type", "boolean"}})}}, {"ok"});
  add(rt, "test_input_required_result_request_state", "Round-trips requestState.", {}, [ok_schema](const call_ptr& c) {
    if (c->input_response("confirm") && c->request_state() == "awaiting-confirm")
      return c->finish(
        mcp::text_result("state-ok: confirmed=" + json::dump((*c->input_response("confirm"))["content"]["ok"])));
    c->require_input(requests({{"confirm", elicit("Please confirm", ok_schema)}}), "awaiting-confirm");
  });
  add(rt, "test_input_required_result_multiple_inputs", "Asks for three inputs at once.", {},
      [name_schema](const call_ptr& c) {
        if (c->request_state() == "awaiting-three" && c->input_response("user_name") && c->input_response("greeting")
            && c->input_response("client_roots"))
          return c->finish(
            mcp::text_result("Got all inputs: name, greeting (" + sampled_text(c, "greeting") + ") and roots"));
        c->require_input(requests({{"user_name", elicit("What is your name?", name_schema)},
                                   {"greeting", sample("Generate a greeting", 50)},
                                   {"client_roots", list_roots()}}),
                         "awaiting-three");
      });
  add(rt, "test_input_required_result_multi_round", "Asks in two rounds.", {}, [name_schema](const call_ptr& c) {
    const auto& state = c->request_state();
    if (state.rfind("round-2:", 0) == 0) {
      if (auto* color = accepted(c, "step2", "color"))
        return c->finish(mcp::text_result("Name: " + state.substr(8) + ", favorite color: " + color->as_string()));
    }
    if (state == "round-1") {
      if (auto* name = accepted(c, "step1", "name"); name && name->is_string())
        return c->require_input(requests({{"step2", elicit("Step 2: What is your favorite color?",
                                                           object_schema({{"color", string_type()}}, {"color"}))}}),
                                "round-2:" + name->as_string());
    }
    c->require_input(requests({{"step1", elicit("Step 1: What is your name?", name_schema)}}), "round-1");
  });
  add(rt, "test_input_required_result_tampered_state", "Rejects an altered requestState.", {},
      [ok_schema](const call_ptr& c) {
        // The session verifies the state's signature before this runs.
        if (c->request_state() == "tamper-check" && c->input_response("confirm"))
          return c->finish(mcp::text_result("state verified"));
        c->require_input(requests({{"confirm", elicit("Please confirm", ok_schema)}}), "tamper-check");
      });
  add(rt, "test_input_required_result_capabilities", "Asks only for what the client supports.", {},
      [name_schema](const call_ptr& c) {
        value wanted(json::object{});
        if (c->client().has_capability("elicitation") && !c->input_response("user_name"))
          wanted.set("user_name", elicit("What is your name?", name_schema));
        if (c->client().has_capability("sampling") && !c->input_response("greeting"))
          wanted.set("greeting", sample("Generate a greeting", 50));
        if (c->client().has_capability("roots") && !c->input_response("client_roots"))
          wanted.set("client_roots", list_roots());
        if (wanted.size() == 0)
          return c->finish(mcp::text_result("All supported inputs received"));
        c->require_input(std::move(wanted));
      });

  // -- not scored, but run by the suite ------------------------------------------------------
  tool_spec schema_tool;
  schema_tool.name = "json_schema_2020_12_tool";
  schema_tool.description = "Tool with JSON Schema 2020-12 features";
  json::parse_error err;
  json::parse(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
    "$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},
    "properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},
    "allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],
    "if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},
    "then":{"required":["phone"]},"else":{"required":["email"]},
    "additionalProperties":false})",
              schema_tool.input_schema, err);
  schema_tool.handler = [](const call_ptr& c) {
    c->finish(mcp::text_result("received: " + json::dump(c->arguments())));
  };
  rt.add_tool(std::move(schema_tool));
  add(rt, "test_custom_headers", "Echoes region (mirrored in the Mcp-Param-Region header).",
      object_schema({{"region", value::make_object({{"type", "string"}, {"x-mcp-header", "Region"}})}}, {"region"}),
      [](const call_ptr& c) { c->finish(mcp::text_result("region: " + c->arguments()["region"].as_string())); });
  register_task_tools(rt);
}

value text_contents(const std::string& uri, const char* mime, std::string text) {
  return value::make_object(
    {{"contents",
      value::make_array({value::make_object({{"uri", uri}, {"mimeType", mime}, {"text", std::move(text)}})})}});
}

void register_resources(runtime& rt) {
  resource_spec text;
  text.uri = "test://static-text";
  text.name = "static-text";
  text.description = "A static text resource.";
  text.mime_type = "text/plain";
  text.handler = [](const call_ptr& c) {
    c->finish(text_contents("test://static-text", "text/plain", "This is the content of the static text resource."));
  };
  rt.add_resource(std::move(text));

  resource_spec binary;
  binary.uri = "test://static-binary";
  binary.name = "static-binary";
  binary.description = "A static binary resource (a PNG image).";
  binary.mime_type = "image/png";
  binary.handler = [](const call_ptr& c) {
    c->finish(value::make_object(
      {{"contents", value::make_array({value::make_object(
                      {{"uri", "test://static-binary"}, {"mimeType", "image/png"}, {"blob", png_base64}})})}}));
  };
  rt.add_resource(std::move(binary));

  resource_spec watched;
  watched.uri = "test://watched-resource";
  watched.name = "watched-resource";
  watched.description = "A resource clients may subscribe to.";
  watched.mime_type = "text/plain";
  watched.handler = [](const call_ptr& c) {
    c->finish(text_contents("test://watched-resource", "text/plain", "Watched resource content."));
  };
  rt.add_resource(std::move(watched));

  resource_template_spec tmpl;
  tmpl.uri_template = "test://template/{id}/data";
  tmpl.name = "template-data";
  tmpl.description = "Data for an id, by URI template.";
  tmpl.mime_type = "application/json";
  tmpl.handler = [](const call_ptr& c) {
    const auto& id = c->arguments()["id"].as_string();
    auto data = value::make_object({{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}});
    c->finish(text_contents(c->arguments()["uri"].as_string(), "application/json", json::dump(data)));
  };
  tmpl.completions["id"] = [](std::string_view partial) {
    std::vector<std::string> out;
    for (const char* id : {"1", "2", "3", "123"})
      if (std::string_view(id).substr(0, partial.size()) == partial)
        out.emplace_back(id);
    return out;
  };
  rt.add_resource_template(std::move(tmpl));
}

value prompt_result(std::initializer_list<value> contents) {
  value messages(json::array{});
  for (auto& c : contents)
    messages.push_back(value::make_object({{"role", "user"}, {"content", c}}));
  return value::make_object({{"messages", std::move(messages)}});
}

void register_prompts(runtime& rt) {
  prompt_spec simple;
  simple.name = "test_simple_prompt";
  simple.description = "A prompt without arguments.";
  simple.handler = [](const call_ptr& c) {
    c->finish(prompt_result({mcp::text_content("This is a simple prompt for testing.")}));
  };
  rt.add_prompt(std::move(simple));

  prompt_spec with_args;
  with_args.name = "test_prompt_with_arguments";
  with_args.description = "A prompt with two required arguments.";
  with_args.arguments = {{"arg1", "First test argument", true}, {"arg2", "Second test argument", true}};
  with_args.handler = [](const call_ptr& c) {
    c->finish(prompt_result({mcp::text_content("Prompt with arguments: arg1='" + c->arguments()["arg1"].as_string()
                                               + "', arg2='" + c->arguments()["arg2"].as_string() + "'")}));
  };
  with_args.completions["arg1"] = [](std::string_view partial) {
    std::vector<std::string> out;
    for (const char* v : {"paris", "park", "party", "test", "testValue1"})
      if (std::string_view(v).substr(0, partial.size()) == partial)
        out.emplace_back(v);
    return out;
  };
  rt.add_prompt(std::move(with_args));

  prompt_spec embedded;
  embedded.name = "test_prompt_with_embedded_resource";
  embedded.description = "A prompt that embeds a resource.";
  embedded.arguments = {{"resourceUri", "URI of the resource to embed", true}};
  embedded.handler = [](const call_ptr& c) {
    auto res = value::make_object({{"uri", c->arguments()["resourceUri"].as_string()},
                                   {"mimeType", "text/plain"},
                                   {"text", "Embedded resource content for testing."}});
    c->finish(prompt_result({value::make_object({{"type", "resource"}, {"resource", res}}),
                             mcp::text_content("Please process the embedded resource above.")}));
  };
  rt.add_prompt(std::move(embedded));

  prompt_spec image;
  image.name = "test_prompt_with_image";
  image.description = "A prompt with an image.";
  image.handler = [](const call_ptr& c) {
    c->finish(prompt_result({content_image(), mcp::text_content("Please analyze the image above.")}));
  };
  rt.add_prompt(std::move(image));

  prompt_spec needs_input;
  needs_input.name = "test_input_required_result_prompt";
  needs_input.description = "A prompt that asks the user for context first.";
  needs_input.handler = [](const call_ptr& c) {
    if (auto* ctx = accepted(c, "user_context", "context"); ctx && ctx->is_string())
      return c->finish(prompt_result({mcp::text_content("Use this context: " + ctx->as_string())}));
    c->require_input(requests({{"user_context", elicit("What context should the prompt use?",
                                                       object_schema({{"context", string_type()}}, {"context"}))}}));
  };
  rt.add_prompt(std::move(needs_input));
}

} // namespace

void register_conformance_fixtures(runtime& rt) {
  register_tools(rt);
  register_resources(rt);
  register_prompts(rt);
}

} // namespace bulwark
