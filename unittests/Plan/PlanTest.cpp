//===- PlanTest.cpp - plan JSON round trip and validation -----------------===//
#include "kt/Runtime/Plan.h"

#include <gtest/gtest.h>

#include <functional>

using nlohmann::json;

namespace {

/// tokens -> embedding -> linear (logits), plus a transfer.
kt::Plan smallPlan() {
  kt::Plan p;
  p.architecture = "LlamaForCausalLM";
  p.source = "models/llama";
  p.values = {{kt::ValueType::I64, 1},
              {kt::ValueType::I64, 1},
              {kt::ValueType::F32, 64},
              {kt::ValueType::F32, 64},
              {kt::ValueType::F32, 640}};
  p.tokensValue = 0;
  p.positionsValue = 1;
  p.logitsValue = 4;

  kt::PlanOp emb;
  emb.kind = "embedding";
  emb.name = "model.embed_tokens";
  emb.moduleClass = "torch.nn.Embedding";
  emb.generateDevice = emb.prefillDevice = "cpu";
  emb.kernel = "cpu.embedding";
  emb.inputs = {0};
  emb.outputs = {2};
  emb.weights["weight"] = {"model.embed_tokens.weight",
                           "model.safetensors",
                           kt::DType::BF16,
                           {640, 64}};

  kt::PlanOp transfer;
  transfer.kind = "transfer";
  transfer.generateDevice = transfer.prefillDevice = "cuda:0";
  transfer.generateFrom = transfer.prefillFrom = "cpu";
  transfer.kernel = "transfer";
  transfer.inputs = {2};
  transfer.outputs = {3};

  kt::PlanOp head;
  head.kind = "cpu_experts";
  head.name = "lm_head";
  head.moduleClass = "torch.nn.Linear";
  head.generateDevice = "cuda:0";
  head.prefillDevice = "cuda:1";
  head.kernel = "cuda.linear";
  head.inputs = {3};
  head.outputs = {4};
  head.weights["weight"] = {"lm_head.weight",
                            "model-00001-of-00002.safetensors",
                            kt::DType::F32,
                            {640, 64}};
  head.weightLists["gate_proj"] = {
      {"e.0.gate", "a.safetensors", kt::DType::F8_E4M3, {2, 3}},
      {"e.1.gate", "a.safetensors", kt::DType::I8, {}}};
  head.attrs = {
      {"eps", 1e-6}, {"top_k", 2}, {"absorb", true}, {"backend", "AMXInt8"}};
  p.ops = {emb, transfer, head};
  p.generateBytes = {{"cpu", 81920}, {"cuda:0", 163840}};
  return p;
}

void expectWeightEq(const kt::PlanWeight &a, const kt::PlanWeight &b) {
  EXPECT_EQ(a.tensor, b.tensor);
  EXPECT_EQ(a.file, b.file);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
}

void expectPlanEq(const kt::Plan &a, const kt::Plan &b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.source, b.source);
  ASSERT_EQ(a.values.size(), b.values.size());
  for (size_t i = 0; i < a.values.size(); ++i) {
    EXPECT_EQ(a.values[i].type, b.values[i].type);
    EXPECT_EQ(a.values[i].cols, b.values[i].cols);
  }
  EXPECT_EQ(a.tokensValue, b.tokensValue);
  EXPECT_EQ(a.positionsValue, b.positionsValue);
  EXPECT_EQ(a.logitsValue, b.logitsValue);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  for (size_t i = 0; i < a.ops.size(); ++i) {
    const kt::PlanOp &x = a.ops[i], &y = b.ops[i];
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.moduleClass, y.moduleClass);
    EXPECT_EQ(x.generateDevice, y.generateDevice);
    EXPECT_EQ(x.prefillDevice, y.prefillDevice);
    EXPECT_EQ(x.generateFrom, y.generateFrom);
    EXPECT_EQ(x.prefillFrom, y.prefillFrom);
    EXPECT_EQ(x.kernel, y.kernel);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.outputs, y.outputs);
    ASSERT_EQ(x.weights.size(), y.weights.size());
    for (const auto &[role, w] : x.weights) {
      ASSERT_TRUE(y.weights.count(role)) << role;
      expectWeightEq(w, y.weights.at(role));
    }
    ASSERT_EQ(x.weightLists.size(), y.weightLists.size());
    for (const auto &[role, list] : x.weightLists) {
      ASSERT_TRUE(y.weightLists.count(role)) << role;
      ASSERT_EQ(list.size(), y.weightLists.at(role).size());
      for (size_t k = 0; k < list.size(); ++k)
        expectWeightEq(list[k], y.weightLists.at(role)[k]);
    }
    EXPECT_EQ(x.attrs, y.attrs);
  }
  EXPECT_EQ(a.generateBytes, b.generateBytes);
}

TEST(Plan, RoundTrip) {
  kt::Plan p = smallPlan();
  std::string text = kt::serializePlan(p);
  auto parsed = kt::parsePlan(text, "plan.json");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  expectPlanEq(p, *parsed);
  // Serialising again gives the same text.
  EXPECT_EQ(text, kt::serializePlan(*parsed));
}

TEST(Plan, JsonSchemaNames) {
  json j = kt::planToJson(smallPlan());
  EXPECT_EQ(j["version"], kt::kPlanVersion);
  EXPECT_EQ(j["values"][0], (json{{"type", "i64"}, {"cols", 1}}));
  EXPECT_EQ(j["values"][4], (json{{"type", "f32"}, {"cols", 640}}));
  EXPECT_EQ(j["tokens"], 0);
  EXPECT_EQ(j["positions"], 1);
  EXPECT_EQ(j["logits"], 4);
  const json &emb = j["ops"][0];
  EXPECT_EQ(emb["kind"], "embedding");
  EXPECT_EQ(emb["class"], "torch.nn.Embedding");
  EXPECT_EQ(emb["weights"]["weight"]["dtype"], "BF16");
  EXPECT_EQ(emb["weights"]["weight"]["shape"], (json{640, 64}));
  EXPECT_FALSE(emb.contains("generate_from"));
  EXPECT_EQ(j["ops"][1]["generate_from"], "cpu");
  EXPECT_EQ(j["ops"][2]["weight_lists"]["gate_proj"][0]["dtype"], "F8_E4M3");
  EXPECT_EQ(j["generate_bytes"]["cuda:0"], 163840);
}

TEST(Plan, OptionalFieldsMayBeOmitted) {
  json j = kt::planToJson(smallPlan());
  j.erase("architecture");
  j.erase("source");
  j.erase("generate_bytes");
  for (json &op : j["ops"]) {
    op.erase("name");
    op.erase("class");
    op.erase("weights");
    op.erase("weight_lists");
    op.erase("attrs");
  }
  auto parsed = kt::planFromJson(j, "p");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->ops[0].weights.empty());
  EXPECT_TRUE(parsed->ops[2].attrs.is_object());
}

/// Applies `edit` to the small plan's JSON and expects planFromJson to
/// fail with a message containing each of `expected`.
void expectError(const std::function<void(json &)> &edit,
                 std::initializer_list<const char *> expected) {
  json j = kt::planToJson(smallPlan());
  edit(j);
  auto parsed = kt::planFromJson(j, "bad.json");
  ASSERT_FALSE(parsed.ok()) << "accepted: " << j.dump();
  const std::string &m = parsed.error().message;
  EXPECT_EQ(m.rfind("bad.json: ", 0), 0u) << m;
  for (const char *e : expected)
    EXPECT_NE(m.find(e), std::string::npos) << "'" << e << "' not in: " << m;
}

TEST(PlanErrors, NotJson) {
  auto parsed = kt::parsePlan("{\"version\": 1,", "broken.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("broken.json: not valid JSON"),
            std::string::npos)
      << parsed.error().message;
  auto array = kt::parsePlan("[]", "array.json");
  ASSERT_FALSE(array.ok());
  EXPECT_NE(array.error().message.find("not a JSON object"), std::string::npos);
}

TEST(PlanErrors, Version) {
  expectError([](json &j) { j["version"] = 2; },
              {"plan version 2 is not supported (expected 1)"});
  expectError([](json &j) { j["version"] = "1"; }, {"'version'"});
  expectError([](json &j) { j.erase("version"); }, {"missing 'version'"});
}

TEST(PlanErrors, TopLevelTypes) {
  expectError([](json &j) { j["architecture"] = 3; },
              {"'architecture' is not a string"});
  expectError([](json &j) { j["values"] = json::object(); },
              {"'values' is not an array"});
  expectError([](json &j) { j["ops"] = 1; }, {"'ops' is not an array"});
  expectError([](json &j) { j.erase("ops"); }, {"missing 'ops'"});
  expectError([](json &j) { j["generate_bytes"]["cpu"] = -1; },
              {"'generate_bytes' of 'cpu'"});
}

TEST(PlanErrors, ValueTypes) {
  expectError([](json &j) { j["values"][2]["type"] = "bf16"; },
              {"value 2: type \"bf16\" is not \"f32\" or \"i64\""});
  expectError([](json &j) { j["values"][2]["cols"] = 0; },
              {"value 2: 'cols' is not a positive integer"});
  expectError([](json &j) { j["values"][3].erase("cols"); },
              {"value 3: missing 'cols'"});
}

TEST(PlanErrors, SpecialValues) {
  expectError([](json &j) { j["tokens"] = 5; },
              {"'tokens': value 5 is out of range (the plan has 5 values)"});
  expectError([](json &j) { j["logits"] = -1; }, {"'logits': value -1"});
  expectError([](json &j) { j["positions"] = 0; },
              {"'tokens' and 'positions' are the same value 0"});
  expectError([](json &j) { j["tokens"] = 2; },
              {"'tokens' (value 2) is not an i64 value"});
  expectError(
      [](json &j) {
        j["logits"] = 0;
        j["tokens"] = 2;
      },
      {"is not an i64 value"});
  expectError([](json &j) { j["values"][4]["type"] = "i64"; },
              {"'logits' (value 4) is not an f32 value"});
  expectError([](json &j) { j["ops"].erase(2); },
              {"'logits' (value 4) is not defined by any op"});
}

TEST(PlanErrors, IdsOutOfRange) {
  expectError([](json &j) { j["ops"][1]["inputs"][0] = 9; },
              {"op 1 (transfer): input 0: value 9 is out of range"});
  expectError([](json &j) { j["ops"][0]["outputs"][0] = 5; },
              {"op 0 ('model.embed_tokens', embedding): output 0: value 5 is "
               "out of range"});
  expectError([](json &j) { j["ops"][0]["inputs"][0] = "0"; },
              {"op 0 ('model.embed_tokens', embedding): input 0 is not an "
               "integer value id"});
}

TEST(PlanErrors, UseBeforeDefinition) {
  // The transfer uses value 2 before the embedding defines it.
  expectError(
      [](json &j) { std::swap(j["ops"][0], j["ops"][1]); },
      {"op 0 (transfer): input 0 uses value 2, which no earlier op defines"});
  expectError([](json &j) { j["ops"][2]["inputs"][0] = 4; },
              {"op 2 ('lm_head', cpu_experts): input 0 uses value 4"});
}

TEST(PlanErrors, DefinedTwice) {
  expectError([](json &j) { j["ops"][1]["outputs"][0] = 2; },
              {"op 1 (transfer): output 0 redefines value 2"});
  expectError([](json &j) { j["ops"][0]["outputs"][0] = 0; },
              {"op 0 ('model.embed_tokens', embedding): output 0 redefines "
               "value 0"});
}

TEST(PlanErrors, OpFields) {
  expectError([](json &j) { j["ops"][0].erase("kind"); },
              {"op 0 ('model.embed_tokens'): missing 'kind'"});
  expectError([](json &j) { j["ops"][0]["kernel"] = ""; },
              {"op 0 ('model.embed_tokens', embedding): 'kernel' is required"});
  expectError([](json &j) { j["ops"][0].erase("prefill_device"); },
              {"op 0", "'generate_device' and 'prefill_device' are required"});
  expectError([](json &j) { j["ops"][1].erase("generate_from"); },
              {"op 1 (transfer): a transfer needs 'generate_from'"});
  expectError([](json &j) { j["ops"][1]["inputs"].push_back(0); },
              {"op 1 (transfer): a transfer has one input and one output"});
  expectError([](json &j) { j["ops"][2]["name"] = 1; },
              {"op 2", "'name' is not a string"});
  expectError([](json &j) { j["ops"][2] = 7; }, {"op 2 is not an object"});
}

TEST(PlanErrors, Weights) {
  expectError(
      [](json &j) { j["ops"][0]["weights"]["weight"]["dtype"] = "F12"; },
      {"op 0 ('model.embed_tokens', embedding): weight 'weight': dtype "
       "\"F12\" is not a safetensors dtype"});
  expectError(
      [](json &j) { j["ops"][0]["weights"]["weight"]["dtype"] = "bf16"; },
      {"is not a safetensors dtype"});
  expectError([](json &j) { j["ops"][0]["weights"]["weight"].erase("file"); },
              {"weight 'weight': missing 'file'"});
  expectError(
      [](json &j) {
        j["ops"][0]["weights"]["weight"]["shape"] = {2, -1};
      },
      {"'shape' has an entry that is not a non-negative integer"});
  expectError(
      [](json &j) {
        j["ops"][2]["weight_lists"]["gate_proj"][1]["tensor"] = "";
      },
      {"op 2 ('lm_head', cpu_experts): weight list 'gate_proj' entry 1: "
       "'tensor' is not a non-empty string"});
  expectError([](json &j) { j["ops"][2]["weight_lists"]["up_proj"] = 1; },
              {"weight list 'up_proj' is not an array"});
}

TEST(PlanErrors, Attrs) {
  expectError(
      [](json &j) {
        j["ops"][2]["attrs"]["list"] = {1, 2};
      },
      {"op 2 ('lm_head', cpu_experts): attribute 'list' is not a "
       "number, boolean or string"});
  expectError([](json &j) { j["ops"][2]["attrs"]["none"] = nullptr; },
              {"attribute 'none'"});
  expectError([](json &j) { j["ops"][2]["attrs"] = json::array(); },
              {"'attrs' is not an object"});
}

} // namespace
