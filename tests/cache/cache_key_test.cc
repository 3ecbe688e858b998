#include "cache/cache_key.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

v1::GenerateRequest ChatRequest() {
  v1::GenerateRequest request;
  request.set_model("gpt-4o");
  auto* system = request.mutable_chat()->add_messages();
  system->set_role("system");
  system->set_content("Be brief.");
  auto* user = request.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_name("ann");
  user->set_content("What is 2+2?");
  auto* params = request.mutable_params();
  params->set_max_tokens(64);
  params->set_temperature(0.0f);
  params->set_top_p(0.9f);
  params->set_seed(7);
  params->add_stop("\n\n");
  params->add_stop("END");
  return request;
}

TEST(CacheKey, IsHexSha256) {
  std::string key = CacheKey("tenant-a", "gpt-4o", ChatRequest());
  ASSERT_EQ(key.size(), 64u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(CacheKey, EqualRequestsBuiltInDifferentOrdersShareAKey) {
  v1::GenerateRequest reordered;
  auto* params = reordered.mutable_params();
  params->add_stop("\n\n");
  params->set_seed(7);
  params->set_top_p(0.9f);
  params->add_stop("END");
  params->set_temperature(0.0f);
  params->set_max_tokens(64);
  auto* system = reordered.mutable_chat()->add_messages();
  auto* user = reordered.mutable_chat()->add_messages();
  user->set_content("What is 2+2?");
  user->set_name("ann");
  user->set_role("user");
  system->set_content("Be brief.");
  system->set_role("system");
  reordered.set_model("gpt-4o");
  // Neither directives nor labels change the answer.
  reordered.set_cache_control(v1::CACHE_CONTROL_BYPASS);
  (*reordered.mutable_tags())["team"] = "search";

  // Unknown fields on the wire do not reach the key either.
  std::string wire = reordered.SerializeAsString();
  wire.append("\xa0\x06\x01", 3);  // field 100, varint 1
  v1::GenerateRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));

  const std::string key = CacheKey("t", "gpt-4o", ChatRequest());
  EXPECT_EQ(CacheKey("t", "gpt-4o", reordered), key);
  EXPECT_EQ(CacheKey("t", "gpt-4o", parsed), key);
}

TEST(CacheKey, EveryFieldChangesTheKey) {
  const std::string base = CacheKey("t", "m", ChatRequest());
  std::vector<std::pair<std::string, std::function<void(v1::GenerateRequest&)>>> changes = {
      {"role", [](auto& r) { r.mutable_chat()->mutable_messages(1)->set_role("assistant"); }},
      {"name", [](auto& r) { r.mutable_chat()->mutable_messages(1)->set_name("bob"); }},
      {"no name", [](auto& r) { r.mutable_chat()->mutable_messages(1)->clear_name(); }},
      {"content", [](auto& r) { r.mutable_chat()->mutable_messages(1)->set_content("2+3?"); }},
      {"message order", [](auto& r) { r.mutable_chat()->mutable_messages()->SwapElements(0, 1); }},
      {"extra message", [](auto& r) { r.mutable_chat()->add_messages(); }},
      {"max_tokens", [](auto& r) { r.mutable_params()->set_max_tokens(65); }},
      {"temperature", [](auto& r) { r.mutable_params()->set_temperature(0.5f); }},
      {"no temperature", [](auto& r) { r.mutable_params()->clear_temperature(); }},
      {"top_p", [](auto& r) { r.mutable_params()->set_top_p(1.0f); }},
      {"no top_p", [](auto& r) { r.mutable_params()->clear_top_p(); }},
      {"seed", [](auto& r) { r.mutable_params()->set_seed(8); }},
      {"no seed", [](auto& r) { r.mutable_params()->clear_seed(); }},
      {"stop order", [](auto& r) { r.mutable_params()->mutable_stop()->SwapElements(0, 1); }},
      {"stop value", [](auto& r) { r.mutable_params()->set_stop(1, "STOP"); }},
      {"extra stop", [](auto& r) { r.mutable_params()->add_stop(""); }},
      {"batch", [](auto& r) { r.set_batch(true); }},
  };
  for (const auto& [what, change] : changes) {
    v1::GenerateRequest request = ChatRequest();
    change(request);
    EXPECT_NE(CacheKey("t", "m", request), base) << what;
  }
  EXPECT_NE(CacheKey("u", "m", ChatRequest()), base) << "tenant scope";
  EXPECT_NE(CacheKey("t", "m2", ChatRequest()), base) << "model";
}

TEST(CacheKey, AbsentParameterDiffersFromItsZeroValue) {
  v1::GenerateRequest without;
  without.set_prompt("hi");
  v1::GenerateRequest with_zero = without;
  with_zero.mutable_params()->set_temperature(0.0f);
  EXPECT_NE(CacheKey("t", "m", without), CacheKey("t", "m", with_zero));
  v1::GenerateRequest with_seed = without;
  with_seed.mutable_params()->set_seed(0);
  EXPECT_NE(CacheKey("t", "m", without), CacheKey("t", "m", with_seed));
}

TEST(CacheKey, ChatAndPromptWithTheSameTextDiffer) {
  v1::GenerateRequest prompt;
  prompt.set_prompt("hello");
  v1::GenerateRequest chat;
  auto* message = chat.mutable_chat()->add_messages();
  message->set_content("hello");
  v1::GenerateRequest empty_chat;
  empty_chat.mutable_chat();
  v1::GenerateRequest empty_prompt;
  empty_prompt.set_prompt("");
  v1::GenerateRequest no_input;
  const std::vector<std::string> keys = {
      CacheKey("t", "m", prompt), CacheKey("t", "m", chat), CacheKey("t", "m", empty_chat),
      CacheKey("t", "m", empty_prompt), CacheKey("t", "m", no_input)};
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = i + 1; j < keys.size(); ++j) EXPECT_NE(keys[i], keys[j]) << i << " vs " << j;
  }
}

TEST(CacheKey, LengthPrefixesPreventConcatenationCollisions) {
  v1::GenerateRequest request;
  request.set_prompt("x");
  EXPECT_NE(CacheKey("ab", "c", request), CacheKey("a", "bc", request));

  v1::GenerateRequest role_content;
  auto* a = role_content.mutable_chat()->add_messages();
  a->set_role("ab");
  a->set_content("c");
  v1::GenerateRequest shifted;
  auto* b = shifted.mutable_chat()->add_messages();
  b->set_role("a");
  b->set_content("bc");
  EXPECT_NE(CacheKey("t", "m", role_content), CacheKey("t", "m", shifted));

  v1::GenerateRequest two_messages;
  two_messages.mutable_chat()->add_messages()->set_content("ab");
  two_messages.mutable_chat()->add_messages()->set_content("c");
  v1::GenerateRequest split_differently;
  split_differently.mutable_chat()->add_messages()->set_content("a");
  split_differently.mutable_chat()->add_messages()->set_content("bc");
  EXPECT_NE(CacheKey("t", "m", two_messages), CacheKey("t", "m", split_differently));

  v1::GenerateRequest stops = request;
  stops.mutable_params()->add_stop("ab");
  stops.mutable_params()->add_stop("c");
  v1::GenerateRequest other_stops = request;
  other_stops.mutable_params()->add_stop("a");
  other_stops.mutable_params()->add_stop("bc");
  EXPECT_NE(CacheKey("t", "m", stops), CacheKey("t", "m", other_stops));
}

// Every byte value, so a scheme that separated fields with some marker byte instead of
// length-prefixing them would collide at the split where the marker falls.
std::string AllBytes() {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  return bytes;
}

TEST(CacheKey, NoTwoSplitsOfTheSameBytesCollide) {
  const std::string s = AllBytes();
  v1::GenerateRequest prompt;
  prompt.set_prompt("x");
  absl::flat_hash_set<std::string> keys;
  for (size_t i = 0; i <= s.size(); ++i) {
    const std::string head = s.substr(0, i), tail = s.substr(i);
    keys.insert(CacheKey(head, tail, prompt));

    v1::GenerateRequest one_message;
    auto* message = one_message.mutable_chat()->add_messages();
    message->set_role(head);
    message->set_content(tail);
    keys.insert(CacheKey("t", "m", one_message));

    v1::GenerateRequest two_messages;
    two_messages.mutable_chat()->add_messages()->set_content(head);
    two_messages.mutable_chat()->add_messages()->set_content(tail);
    keys.insert(CacheKey("t", "m", two_messages));

    v1::GenerateRequest stops = prompt;
    stops.mutable_params()->add_stop(head);
    stops.mutable_params()->add_stop(tail);
    keys.insert(CacheKey("t", "m", stops));
  }
  EXPECT_EQ(keys.size(), 4 * (s.size() + 1));
}

TEST(CacheKey, KeyIgnoresTheRequestsOwnModelField) {
  v1::GenerateRequest alias = ChatRequest();
  alias.set_model("fast");
  EXPECT_EQ(CacheKey("t", "gpt-4o", alias), CacheKey("t", "gpt-4o", ChatRequest()));
}

TEST(IsDeterministic, TemperatureZeroOrASeed) {
  v1::GenerateRequest request;
  request.set_prompt("hi");
  EXPECT_FALSE(IsDeterministic(request));
  request.mutable_params()->set_temperature(0.7f);
  EXPECT_FALSE(IsDeterministic(request));
  request.mutable_params()->set_temperature(0.0f);
  EXPECT_TRUE(IsDeterministic(request));
  request.mutable_params()->set_temperature(1.0f);
  request.mutable_params()->set_seed(42);
  EXPECT_TRUE(IsDeterministic(request));
  request.mutable_params()->clear_temperature();
  EXPECT_TRUE(IsDeterministic(request));
}

}  // namespace
}  // namespace tollgate
