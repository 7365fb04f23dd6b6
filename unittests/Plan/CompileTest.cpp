//===- CompileTest.cpp - compileModel on the fixture models ---------------===//
#include "kt/Transforms/Compile.h"

#include <gtest/gtest.h>

#include <string>

namespace {

const std::string kFixtures = KT_TEST_FIXTURES "/models";
const std::string kRules = KT_RULES_DIR;

TEST(CompileModel, PlanSurvivesSerialisation) {
  kt::CompileOptions options;
  options.modelDir = kFixtures + "/qwen3-moe";
  options.rulesPath = kRules + "/qwen3-moe-cpu.yaml";
  kt::CompileResult result = kt::compileModel(options);
  ASSERT_TRUE(result.plan.has_value()) << result.diagnostics;
  EXPECT_EQ(result.diagnostics, "");
  EXPECT_EQ(result.plan->architecture, "Qwen3MoeForCausalLM");

  std::string text = kt::serializePlan(*result.plan);
  auto parsed = kt::parsePlan(text, "qwen3-moe.plan.json");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(kt::serializePlan(*parsed), text);
  EXPECT_EQ(parsed->ops.front().kind, "embedding");
  EXPECT_EQ(parsed->ops.back().name, "lm_head");
  EXPECT_EQ(parsed->ops.back().outputs.front(), parsed->logitsValue);
  EXPECT_EQ(parsed->generateBytes.size(), 1u);
  EXPECT_GT(parsed->generateBytes.at("cpu"), 0);

  // The placement report lists every module, the root first.
  EXPECT_EQ(result.placementReportJson.rfind("[", 0), 0u);
  EXPECT_NE(result.placementReportJson.find("\"module\": \"lm_head\""),
            std::string::npos);
}

TEST(CompileModel, GpuRulesGiveTransfers) {
  kt::CompileOptions options;
  options.modelDir = kFixtures + "/deepseek-v2";
  options.rulesPath = kRules + "/deepseek-v2-lite.yaml";
  kt::CompileResult result = kt::compileModel(options);
  ASSERT_TRUE(result.plan.has_value()) << result.diagnostics;
  int transfers = 0, mla = 0;
  for (const kt::PlanOp &op : result.plan->ops) {
    transfers += op.kind == "transfer";
    if (op.kind == "mla_core") {
      ++mla;
      EXPECT_EQ(op.inputs.size(), 5u);
      EXPECT_TRUE(op.weights.count("kv_b"));
      EXPECT_EQ(op.attrs.value("absorb", false), true);
    }
  }
  EXPECT_GT(transfers, 0);
  EXPECT_EQ(mla, 3);
}

TEST(CompileModel, BadRulesAreDiagnosed) {
  kt::CompileOptions options;
  options.modelDir = kFixtures + "/qwen3-moe";
  options.rulesPath = KT_BAD_RULES;
  kt::CompileResult result = kt::compileModel(options);
  EXPECT_FALSE(result.plan.has_value());
  EXPECT_NE(result.diagnostics.find("bad-regex.yaml:"), std::string::npos)
      << result.diagnostics;
  EXPECT_NE(result.diagnostics.find(": error: "), std::string::npos);
  EXPECT_EQ(result.placementReportJson, "");
}

TEST(CompileModel, MissingModelIsDiagnosed) {
  kt::CompileOptions options;
  options.modelDir = kFixtures + "/no-such-model";
  kt::CompileResult result = kt::compileModel(options);
  EXPECT_FALSE(result.plan.has_value());
  EXPECT_NE(result.diagnostics.find("no-such-model: error: "),
            std::string::npos)
      << result.diagnostics;
}

TEST(CompileModel, BadDefaultDeviceIsDiagnosed) {
  kt::CompileOptions options;
  options.modelDir = kFixtures + "/llama";
  options.defaultDevice = "tpu";
  kt::CompileResult result = kt::compileModel(options);
  EXPECT_FALSE(result.plan.has_value());
  EXPECT_NE(result.diagnostics.find("error: --default-device 'tpu'"),
            std::string::npos)
      << result.diagnostics;
}

TEST(CompileModel, DenseModelOnCpu) {
  kt::CompileOptions options;
  options.modelDir = kFixtures + "/llama";
  options.defaultDevice = "cpu";
  kt::CompileResult result = kt::compileModel(options);
  ASSERT_TRUE(result.plan.has_value()) << result.diagnostics;
  for (const kt::PlanOp &op : result.plan->ops)
    EXPECT_EQ(op.kernel.rfind("cpu.", 0), 0u) << op.kernel;
}

} // namespace
