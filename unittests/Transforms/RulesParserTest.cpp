//===- RulesParserTest.cpp - Parsing rule files and their diagnostics -----===//

#include "RulesTestUtil.h"

#include <cmath>

using namespace kt::rules;
using namespace kt::rules::test;
using nlohmann::json;

namespace {

TEST(RulesParser, ParsesFieldsOfARule) {
  RuleSet set = parseOk(R"(- match:
    name: "^model\\.layers\\..*\\.mlp\\.experts$"
    class: torch.nn.ModuleList
  replace:
    class: ktransformers.operators.experts.KTransformersExperts
    kwargs:
      generate_device: "cpu"
      generate_op: "KExpertsCPU"
      out_device: "cuda"
  recursive: False
- match:
    name: "^lm_head"
  replace:
    class: kt.linear
)");
  ASSERT_EQ(set.rules().size(), 2u);
  const Rule &r = set.rules()[0];
  EXPECT_EQ(r.index, 0u);
  EXPECT_EQ(r.line, 1);
  ASSERT_TRUE(r.namePattern.has_value());
  EXPECT_EQ(*r.namePattern, "^model\\.layers\\..*\\.mlp\\.experts$");
  ASSERT_TRUE(r.matchClass.has_value());
  EXPECT_EQ(*r.matchClass, "torch.nn.ModuleList");
  EXPECT_EQ(r.replaceClass,
            "ktransformers.operators.experts.KTransformersExperts");
  EXPECT_EQ(r.kwargs, json({{"generate_device", "cpu"},
                            {"generate_op", "KExpertsCPU"},
                            {"out_device", "cuda"}}));
  EXPECT_FALSE(r.recursive);
  EXPECT_EQ(r.nameLine, 2);
  EXPECT_EQ(r.matchClassLine, 3);
  EXPECT_EQ(r.replaceClassLine, 5);
  EXPECT_EQ(r.recursiveLine, 10);
  EXPECT_EQ(r.lineOfKwarg("generate_op"), 8);
  EXPECT_EQ(r.lineOfKwarg("absent"), 5);

  const Rule &second = set.rules()[1];
  EXPECT_EQ(second.index, 1u);
  EXPECT_EQ(second.line, 11);
  EXPECT_FALSE(second.matchClass.has_value());
  EXPECT_TRUE(second.recursive);
  EXPECT_TRUE(second.kwargs.is_object());
  EXPECT_TRUE(second.kwargs.empty());
  EXPECT_EQ(set.fileName(), "test.yaml");
}

TEST(RulesParser, RecursiveForms) {
  RuleSet set = parseOk(R"(- match: {name: a}
  replace: {class: default}
  recursive: false
- match: {name: b}
  replace: {class: default}
  recursive: True
- match: {name: c}
  replace: {class: default}
)");
  ASSERT_EQ(set.rules().size(), 3u);
  EXPECT_FALSE(set.rules()[0].recursive);
  EXPECT_TRUE(set.rules()[1].recursive);
  EXPECT_TRUE(set.rules()[2].recursive);
  EXPECT_EQ(set.rules()[2].recursiveLine, 0);
}

TEST(RulesParser, KwargsAreTypedLikePyYAML) {
  RuleSet set = parseOk(R"(- match:
    name: "^model$"
  replace:
    class: "ktransformers.operators.models.KDeepseekV2Model"
    kwargs:
      per_layer_prefill_intput_threshold: 0
      absorb_for_prefill: False
      quoted_int: "0"
      hex: 0x10
      octal: 010
      ratio: 1.5
      big: 1_000
      nothing: ~
      word: KLinearTorch
      yes_word: yes
      list: [1, "two", 3.0]
      nested: {a: 1}
)");
  ASSERT_EQ(set.rules().size(), 1u);
  const json &k = set.rules()[0].kwargs;
  ASSERT_TRUE(k["per_layer_prefill_intput_threshold"].is_number_integer());
  EXPECT_EQ(k["per_layer_prefill_intput_threshold"].get<int>(), 0);
  ASSERT_TRUE(k["absorb_for_prefill"].is_boolean());
  EXPECT_FALSE(k["absorb_for_prefill"].get<bool>());
  ASSERT_TRUE(k["quoted_int"].is_string());
  EXPECT_EQ(k["quoted_int"], "0");
  EXPECT_EQ(k["hex"], 16);
  EXPECT_EQ(k["octal"], 8);
  ASSERT_TRUE(k["ratio"].is_number_float());
  EXPECT_DOUBLE_EQ(k["ratio"].get<double>(), 1.5);
  EXPECT_EQ(k["big"], 1000);
  EXPECT_TRUE(k["nothing"].is_null());
  EXPECT_EQ(k["word"], "KLinearTorch");
  EXPECT_EQ(k["yes_word"], true);
  EXPECT_EQ(k["list"], json::parse(R"([1, "two", 3.0])"));
  EXPECT_EQ(k["nested"], json({{"a", 1}}));
}

TEST(RulesParser, TransferMapKeysBecomeStrings) {
  RuleSet set = parseOk(R"(- match:
    name: "^model$"
  replace:
    class: "ktransformers.operators.models.KDeepseekV2Model"
    kwargs:
      transfer_map:
        30: "cuda:1"
        45: "cuda:2"
)");
  ASSERT_EQ(set.rules().size(), 1u);
  const json &map = set.rules()[0].kwargs["transfer_map"];
  EXPECT_EQ(map, json({{"30", "cuda:1"}, {"45", "cuda:2"}}));
  EXPECT_EQ(set.rules()[0].kwargs.dump(),
            R"({"transfer_map":{"30":"cuda:1","45":"cuda:2"}})");
}

TEST(RulesParser, MissingReplaceClassMeansDefault) {
  RuleSet set = parseOk(R"(- match:
    name: "^model\\.embed_tokens"
  replace:
    kwargs:
      generate_device: cpu
)");
  ASSERT_EQ(set.rules().size(), 1u);
  EXPECT_EQ(set.rules()[0].replaceClass, "default");
  EXPECT_EQ(set.rules()[0].replaceClassLine, 3);
  EXPECT_EQ(set.rules()[0].kwargs["generate_device"], "cpu");
}

TEST(RulesParser, MalformedYamlReportsLineInsideRule) {
  // An unterminated flow mapping: yaml-cpp stops at the '-' of the next
  // rule (line 6); kt reports the last line of the offending rule instead.
  Diagnostic d = parseErr(R"(- match:
    name: "^lm_head$"
  replace:
    class: default
    kwargs: {generate_device: "cuda", prefill_device: "cuda"
- match:
    name: "^model$"
)");
  EXPECT_EQ(d.file, "test.yaml");
  EXPECT_EQ(d.line, 5);
  EXPECT_EQ(d.column, 0);
  EXPECT_FALSE(d.message.empty());
  EXPECT_EQ(d.str().rfind("test.yaml:5: error: ", 0), 0u) << d.str();
}

TEST(RulesParser, MalformedYamlBadIndentation) {
  Diagnostic d = parseErr("- match:\n    name: a\n  replace:\n    class: "
                          "default\n   bad: 1\n");
  EXPECT_EQ(d.line, 5) << d.str();
  EXPECT_GT(d.column, 0);
}

TEST(RulesParser, UnknownMatchClassAtItsLine) {
  Diagnostic d = parseErr(R"(- match:
    name: "^lm_head$"
  replace:
    class: default
- match:
    name: "^model$"
    class: ktransformers.models.modeling_deepseek.DeepseekV9Attention
  replace:
    class: default
)");
  EXPECT_EQ(d.line, 7);
  EXPECT_EQ(d.column, 0);
  EXPECT_NE(d.message.find("unknown class "
                           "'ktransformers.models.modeling_deepseek."
                           "DeepseekV9Attention'"),
            std::string::npos)
      << d.message;
  EXPECT_EQ(d.str().rfind("test.yaml:7: error: unknown class", 0), 0u)
      << d.str();
}

TEST(RulesParser, BadRegexAtNameLineWithPcre2Message) {
  Diagnostic d = parseErr(R"(- match:
    class: torch.nn.Linear
  replace:
    class: default
- match:
    class: torch.nn.Linear
    name: "^model\\.layers\\.(?!.*kv_b_proj.*$"
  replace:
    class: default
)");
  EXPECT_EQ(d.line, 7);
  EXPECT_NE(d.message.find("missing closing parenthesis"), std::string::npos)
      << d.message;
  EXPECT_NE(d.message.find("at offset 33"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("^model\\.layers\\.(?!.*kv_b_proj.*$"),
            std::string::npos)
      << d.message;
}

TEST(RulesParser, BadDeviceAtKwargLine) {
  Diagnostic d = parseErr(R"(- match:
    name: "^model\\.layers\\..*\\.self_attn$"
  replace:
    class: ktransformers.operators.attention.KDeepseekV2Attention
    kwargs:
      generate_device: "cuda:0"
      prefill_device: "gpu"
)");
  EXPECT_EQ(d.line, 7);
  EXPECT_NE(d.message.find("invalid device \"gpu\" for 'prefill_device'"),
            std::string::npos)
      << d.message;
}

TEST(RulesParser, BadDeviceForms) {
  for (const char *device :
       {"cuda:", "cuda:x", "cuda:-1", "CUDA", "cuda0", "cpu:0", "cuda:1 "}) {
    Diagnostic d = parseErr(std::string("- match: {name: a}\n"
                                        "  replace:\n"
                                        "    kwargs:\n"
                                        "      out_device: \"") +
                            device + "\"\n");
    EXPECT_EQ(d.line, 4) << device;
  }
  Diagnostic notString = parseErr("- match: {name: a}\n"
                                  "  replace:\n"
                                  "    kwargs:\n"
                                  "      generate_device: 0\n");
  EXPECT_EQ(notString.line, 4);
}

TEST(RulesParser, BadTransferMap) {
  Diagnostic badDevice = parseErr(R"(- match:
    name: "^model$"
  replace:
    class: "ktransformers.operators.models.KDeepseekV2Model"
    kwargs:
      per_layer_prefill_intput_threshold: 0
      transfer_map:
        30: "cuda:one"
)");
  EXPECT_EQ(badDevice.line, 8);
  EXPECT_NE(badDevice.message.find(
                "invalid device \"cuda:one\" in transfer_map for layer 30"),
            std::string::npos)
      << badDevice.message;

  Diagnostic badKey = parseErr(R"(- match:
    name: "^model$"
  replace:
    class: "ktransformers.operators.models.KDeepseekV2Model"
    kwargs:
      transfer_map:
        layer30: "cuda:1"
)");
  EXPECT_EQ(badKey.line, 7);
  EXPECT_NE(badKey.message.find("'layer30'"), std::string::npos);

  Diagnostic notMap = parseErr(R"(- match:
    name: "^model$"
  replace:
    kwargs:
      transfer_map: "cuda:1"
)");
  EXPECT_EQ(notMap.line, 5);
}

TEST(RulesParser, MissingMatch) {
  Diagnostic d = parseErr(R"(- match:
    name: a
  replace:
    class: default

- replace:
    class: default
)");
  EXPECT_EQ(d.line, 6);
  EXPECT_NE(d.message.find("rule 1 has no 'match'"), std::string::npos)
      << d.message;
}

TEST(RulesParser, MissingReplace) {
  Diagnostic d = parseErr("- match:\n    name: a\n");
  EXPECT_EQ(d.line, 1);
  EXPECT_NE(d.message.find("no 'replace'"), std::string::npos);
}

TEST(RulesParser, MatchWithoutNameOrClass) {
  Diagnostic empty = parseErr(R"(- match: {}
  replace:
    class: default
)");
  EXPECT_EQ(empty.line, 1);
  EXPECT_NE(empty.message.find("at least one of 'name' and 'class'"),
            std::string::npos);

  Diagnostic null = parseErr(R"(- replace:
    class: default
  match:
)");
  EXPECT_EQ(null.line, 3);
}

TEST(RulesParser, UnknownKeys) {
  Diagnostic inRule = parseErr(R"(- match:
    name: a
  replace:
    class: default
  recursve: false
)");
  EXPECT_EQ(inRule.line, 5);
  EXPECT_NE(inRule.message.find("unknown key 'recursve' in rule"),
            std::string::npos);

  Diagnostic inMatch = parseErr(R"(- match:
    name: a
    device: cpu
  replace:
    class: default
)");
  EXPECT_EQ(inMatch.line, 3);
  EXPECT_NE(inMatch.message.find("unknown key 'device' in match"),
            std::string::npos);

  Diagnostic inReplace = parseErr(R"(- match:
    name: a
  replace:
    class: default
    kwarg:
      generate_device: cpu
)");
  EXPECT_EQ(inReplace.line, 5);
  EXPECT_NE(inReplace.message.find("unknown key 'kwarg' in replace"),
            std::string::npos);

  Diagnostic duplicate = parseErr(R"(- match:
    name: a
    name: b
  replace:
    class: default
)");
  EXPECT_EQ(duplicate.line, 3);
  EXPECT_NE(duplicate.message.find("duplicate key 'name'"), std::string::npos);
}

TEST(RulesParser, UnknownReplaceClassAtClassLine) {
  Diagnostic d = parseErr(R"(- match:
    name: "^lm_head$"
  replace:
    kwargs:
      generate_device: cuda
    class: ktransformers.operators.linear.KTransformersLinearX
)");
  EXPECT_EQ(d.line, 6);
  EXPECT_NE(d.message.find("unknown replace class"), std::string::npos);

  Diagnostic hint = parseErr(R"(- match:
    name: "^lm_head$"
  replace:
    class: KTransformersLinear
)");
  EXPECT_EQ(hint.line, 4);
  EXPECT_NE(
      hint.message.find(
          "did you mean 'ktransformers.operators.linear.KTransformersLinear'"),
      std::string::npos)
      << hint.message;
}

TEST(RulesParser, UnsupportedOpsAndBackendsAtTheirLines) {
  Diagnostic op = parseErr(R"(- match:
    name: "^lm_head$"
  replace:
    class: ktransformers.operators.linear.KTransformersLinear
    kwargs:
      generate_device: "cuda"
      generate_op: "KLinearQ9"
)");
  EXPECT_EQ(op.line, 7);
  EXPECT_NE(op.message.find("'KLinearQ9'"), std::string::npos);

  Diagnostic backend = parseErr(R"(- match:
    name: "experts$"
  replace:
    class: ktransformers.operators.experts.KTransformersExperts
    kwargs:
      backend: "AMXInt3"
      generate_op: "KExpertsCPU"
)");
  EXPECT_EQ(backend.line, 6);
  EXPECT_NE(backend.message.find("unsupported backend 'AMXInt3'"),
            std::string::npos);

  Diagnostic marlinOnCpu = parseErr(R"(- match:
    name: "experts$"
  replace:
    class: ktransformers.operators.experts.KTransformersExperts
    kwargs:
      generate_device: "cpu"
      generate_op: "KExpertsMarlin"
)");
  EXPECT_EQ(marlinOnCpu.line, 7);
}

TEST(RulesParser, RecursiveMustBeBoolean) {
  Diagnostic d = parseErr(R"(- match:
    name: a
  replace:
    class: default
  recursive: "false"
)");
  EXPECT_EQ(d.line, 5);
  EXPECT_NE(d.message.find("'recursive' must be true or false"),
            std::string::npos);
}

TEST(RulesParser, NameMustBeAString) {
  Diagnostic d = parseErr(R"(- match:
    name: [a, b]
  replace:
    class: default
)");
  EXPECT_EQ(d.line, 2);
  EXPECT_NE(d.message.find("match.name must be a string"), std::string::npos);
}

TEST(RulesParser, TopLevelMustBeASequence) {
  Diagnostic map = parseErr(R"(match:
  name: a
replace:
  class: default
)");
  EXPECT_EQ(map.line, 1);
  EXPECT_NE(map.message.find("sequence of rules"), std::string::npos);

  Diagnostic scalar = parseErr("just a string\n");
  EXPECT_NE(scalar.message.find("sequence of rules"), std::string::npos);

  Diagnostic notMapping = parseErr("- match: {name: a}\n"
                                   "  replace: {class: default}\n"
                                   "- plain\n");
  EXPECT_EQ(notMapping.line, 3);
  EXPECT_NE(notMapping.message.find("rule 1 must be a mapping"),
            std::string::npos);
}

TEST(RulesParser, EmptyFilesHaveNoRules) {
  for (const char *text : {"", "\n\n", "# only a comment\n", "[]\n"}) {
    Diagnostic d = parseErr(text);
    EXPECT_NE(d.message.find("no rules"), std::string::npos) << text;
    EXPECT_GE(d.line, 1) << text;
  }
}

TEST(RulesParser, DiagnosticFormat) {
  EXPECT_EQ((Diagnostic{"r.yaml", 3, 7, "boom"}.str()),
            "r.yaml:3:7: error: boom");
  EXPECT_EQ((Diagnostic{"r.yaml", 3, 0, "boom"}.str()),
            "r.yaml:3: error: boom");
  EXPECT_EQ((Diagnostic{"r.yaml", 0, 0, "boom"}.str()), "r.yaml: error: boom");
}

TEST(RulesParser, ParseFileReportsThePathAsGiven) {
  std::string path = std::string(KT_RULES_INPUTS_DIR) + "/bad-device.yaml";
  auto result = RuleSet::parseFile(path);
  ASSERT_TRUE(std::holds_alternative<Diagnostic>(result));
  const Diagnostic &d = std::get<Diagnostic>(result);
  EXPECT_EQ(d.file, path);
  EXPECT_EQ(d.line, 15);
  EXPECT_EQ(d.str(), path + ":15: error: invalid device \"gpu:1\" for "
                            "'prefill_device' (expected \"cpu\", \"cuda\" "
                            "or \"cuda:N\")");

  std::string malformed = std::string(KT_RULES_INPUTS_DIR) + "/malformed.yaml";
  auto bad = RuleSet::parseFile(malformed);
  ASSERT_TRUE(std::holds_alternative<Diagnostic>(bad));
  EXPECT_EQ(std::get<Diagnostic>(bad).line, 5); // inside the first rule
  EXPECT_EQ(std::get<Diagnostic>(bad).file, malformed);

  auto missing = RuleSet::parseFile("/nonexistent/rules.yaml");
  ASSERT_TRUE(std::holds_alternative<Diagnostic>(missing));
  EXPECT_EQ(std::get<Diagnostic>(missing).file, "/nonexistent/rules.yaml");
  EXPECT_NE(std::get<Diagnostic>(missing).message.find("cannot open"),
            std::string::npos);
}

TEST(RulesParser, EveryUpstreamFileParses) {
  auto files = upstreamRuleFiles();
  EXPECT_EQ(files.size(), 10u);
  for (const auto &file : files) {
    auto result = RuleSet::parseFile(file.string());
    if (auto *d = std::get_if<Diagnostic>(&result)) {
      ADD_FAILURE() << d->str();
      continue;
    }
    const RuleSet &set = std::get<RuleSet>(result);
    EXPECT_GE(set.rules().size(), 5u) << file;
    for (const Rule &r : set.rules()) {
      EXPECT_TRUE(r.namePattern || r.matchClass) << file << " rule " << r.index;
      EXPECT_GT(r.line, 0);
      EXPECT_TRUE(isKnownReplaceClass(r.replaceClass)) << r.replaceClass;
    }
  }
}

TEST(RulesParser, UpstreamMultiGpuDetails) {
  RuleSet set = parseUpstream("DeepSeek-V3-Chat-multi-gpu.yaml");
  ASSERT_EQ(set.rules().size(), 17u);
  const Rule &model = set.rules()[13];
  EXPECT_EQ(*model.namePattern, "^model$");
  EXPECT_EQ(model.line, 120);
  EXPECT_EQ(model.kwargs["transfer_map"], json({{"30", "cuda:1"}}));
  EXPECT_EQ(model.kwargs["per_layer_prefill_intput_threshold"], 0);
  EXPECT_EQ(model.lineOfKwarg("transfer_map"), 126);
  EXPECT_EQ(model.lineOfKwarg("transfer_map.30"), 127);
  EXPECT_EQ(model.lineOfKwarg("transfer_map.31"), 126);
  const Rule &experts = set.rules()[9];
  EXPECT_FALSE(experts.recursive);
  EXPECT_EQ(experts.kwargs["out_device"], "cuda:0");
  EXPECT_EQ(set.rules()[16].kwargs["generate_device"], "cuda:1");
}

} // namespace
