//===- kt-run.cpp - run a Hugging Face model with kt ---------------------===//
//
// kt-run --model DIR [--rules R.yaml] (--prompt TEXT | --prompt-ids ... |
// --chat) ...: compiles the model directory (import, rules, placement,
// lowering to a plan) and runs the plan on the CPU. docs/kt-run.md.
//
//===----------------------------------------------------------------------===//

#include "Generate.h"
#include "Npy.h"
#include "Options.h"
#include "ToolCommon.h"

#include "kt/Runtime/ModelConfig.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

using namespace ktrun;
namespace fs = std::filesystem;

static int fail(const std::string &msg) {
  std::fprintf(stderr, "kt-run: error: %s\n", msg.c_str());
  return 1;
}

static kt::Result<kt::Plan> obtainPlan(const RunOptions &o,
                                       const kt::ModelConfig &cfg,
                                       std::string &cpuRules) {
  cpuRules = kttools::defaultCpuRules(cfg.family);
  if (!o.planFile.empty()) {
    std::ifstream in(o.planFile);
    if (!in)
      return kt::Error{o.planFile + ": cannot open"};
    std::stringstream ss;
    ss << in.rdbuf();
    return kt::parsePlan(ss.str(), o.planFile);
  }
  return kttools::compileCpuPlan(o.model, o.rules.empty() ? cpuRules : o.rules);
}

static void report(const kt::Model &m, bool quiet) {
  if (quiet)
    return;
  const auto &s = m.stats();
  auto rate = [](int64_t n, double t) { return t > 0 ? n / t : 0.0; };
  std::fprintf(stderr,
               "\nkt-run: prefill %lld tokens in %.3f s (%.1f tok/s), decode "
               "%lld tokens in %.3f s (%.1f tok/s), %d threads\n",
               static_cast<long long>(s.prefillTokens), s.prefillSeconds,
               rate(s.prefillTokens, s.prefillSeconds),
               static_cast<long long>(s.decodeTokens), s.decodeSeconds,
               rate(s.decodeTokens, s.decodeSeconds), m.threads());
}

/// Where the routed experts went when they are split across NUMA nodes;
/// a warning (even with --quiet) when the OS refused to bind some of them
/// to their node's memory.
static void reportNumaSplit(const kt::Model &m, bool quiet) {
  const kt::NumaSplitInfo &s = m.numaSplit();
  if (s.nodes == 0)
    return;
  if (!quiet) {
    char bind[96] = "one memory node, nothing to bind";
    // KiB below 1 MiB, so that a small model's binding does not read 0.0.
    const bool mib = s.boundBytes >= (1u << 20);
    if (s.physicalNodes > 1)
      std::snprintf(bind, sizeof bind, "%.1f %s bound to their node's memory",
                    static_cast<double>(s.boundBytes) /
                        (mib ? 1 << 20 : 1 << 10),
                    mib ? "MiB" : "KiB");
    std::fprintf(stderr,
                 "kt-run: NUMA split: %s; routed experts in %d slice%s of "
                 "their intermediate dimension; %s\n",
                 s.topology.c_str(), s.slices, s.slices == 1 ? "" : "s", bind);
  }
  if (s.bindFailures > 0)
    std::fprintf(stderr,
                 "kt-run: warning: the OS refused to bind %d packed expert "
                 "buffers to their NUMA node (mbind); they stay where first "
                 "touch put them, on the node whose threads packed them\n",
                 s.bindFailures);
}

static void printIds(const std::vector<int64_t> &ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i)
    line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
}

static int chatLoop(kt::Model &model, const kt::Tokenizer &tok,
                    const RunOptions &o, const std::set<int64_t> &eos) {
  std::vector<kt::ChatMessage> msgs;
  if (!o.system.empty())
    msgs.push_back({"system", o.system});
  std::vector<int64_t> cached; // ids whose keys/values the model holds
  bool interactive = !o.prompt;
  std::string line;
  while (true) {
    if (interactive) {
      if (isatty(STDIN_FILENO))
        std::fputs("> ", stderr);
      if (!std::getline(std::cin, line))
        break;
      if (line.empty())
        continue;
    } else {
      line = *o.prompt;
    }
    msgs.push_back({"user", line});
    auto text = tok.applyChatTemplate(msgs, true);
    if (!text.ok())
      return fail(text.error().message);
    std::vector<int64_t> ids = tok.encode(*text, false);
    size_t common = 0;
    while (common < cached.size() && common < ids.size() &&
           cached[common] == ids[common])
      ++common;
    auto g = generate(model, &tok, o, eos, ids, static_cast<int64_t>(common),
                      o.printIds ? nullptr : stdout, nullptr);
    if (!g.ok())
      return fail(g.error().message);
    if (o.printIds)
      printIds(g->ids);
    else
      std::printf("\n");
    std::fflush(stdout);
    cached = ids;
    if (!g->ids.empty())
      cached.insert(cached.end(), g->ids.begin(), g->ids.end() - 1);
    msgs.push_back({"assistant", g->text});
    if (!interactive)
      break;
  }
  report(model, o.quiet);
  return 0;
}

int main(int argc, char **argv) {
  RunOptions o;
  bool help = false;
  if (auto err = parseOptions(argc, argv, o, help)) {
    std::fprintf(stderr, "kt-run: error: %s\n%s", err->c_str(), kUsage);
    return 2;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::optional<kt::Tokenizer> tok;
  bool needTok = o.prompt || o.tokenize || o.chat;
  if (needTok || fs::exists(o.model + "/tokenizer.json")) {
    auto t = kt::Tokenizer::load(o.model);
    if (!t.ok()) {
      if (needTok)
        return fail(t.error().message);
      std::fprintf(stderr, "kt-run: warning: %s; printing ids only\n",
                   t.error().message.c_str());
    } else {
      tok = std::move(*t);
    }
  }
  if (o.tokenize) {
    std::vector<int64_t> ids = tok->encode(*o.tokenize, true);
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    return 0;
  }
  auto cfg = kttools::readModelConfig(o.model);
  if (!cfg.ok())
    return fail(cfg.error().message);
  std::string cpuRules;
  auto plan = obtainPlan(o, *cfg, cpuRules);
  if (!plan.ok())
    return fail(plan.error().message);
  kt::ExecOptions eo;
  eo.dtype = o.dtype;
  eo.threads = o.threads;
  eo.maxContext = o.context;
  eo.modelDir = o.model;
  eo.expertsDir = o.expertsDir;
  eo.int8FloatActivations = o.int8FloatActivations;
  if (o.int8ActBlock)
    eo.int8ActBlock = *o.int8ActBlock;
  auto model = kt::Model::load(*plan, eo);
  if (!model.ok()) {
    std::string msg = model.error().message;
    if (msg.find("cuda") != std::string::npos)
      msg += cpuRules.empty()
                 ? " (run without --rules to keep everything on the CPU)"
                 : " (use the CPU rule file: --rules " + cpuRules +
                       ", or omit --rules)";
    return fail(msg);
  }
  reportNumaSplit(**model, o.quiet);
  std::set<int64_t> eos = eosIds(**model, tok ? &*tok : nullptr, o.model);
  if (o.chat)
    return chatLoop(**model, *tok, o, eos);
  std::vector<int64_t> prompt =
      o.promptIds ? *o.promptIds : tok->encode(*o.prompt, true);
  if (prompt.empty())
    return fail("the prompt is empty after tokenization");
  std::vector<float> logits;
  bool text = !o.printIds && tok;
  auto g = generate(**model, tok ? &*tok : nullptr, o, eos, prompt, 0,
                    text ? stdout : nullptr,
                    o.dumpLogits.empty() ? nullptr : &logits);
  if (!g.ok())
    return fail(g.error().message);
  if (!o.dumpLogits.empty()) {
    if (auto err = writeNpyF32(o.dumpLogits, logits,
                               static_cast<int64_t>(prompt.size()),
                               (*model)->vocabSize()))
      return fail(*err);
  }
  if (o.printIds)
    printIds(g->ids);
  else if (text)
    std::printf("\n");
  std::fflush(stdout);
  report(**model, o.quiet);
  return 0;
}
