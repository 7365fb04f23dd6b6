//===- Options.cpp - kt-run command line ---------------------------------===//

#include "Options.h"

#include "ArgCursor.h"

#include "kt/Runtime/Kernels/Moe.h"

#include <charconv>
#include <cstring>

namespace ktrun {

const char *kUsage =
    R"(usage: kt-run --model DIR [options] (--prompt TEXT | --prompt-ids 1,2,3 | --chat)
       kt-run --model DIR --tokenize TEXT

Runs a Hugging Face model directory on the CPU: imports it, applies the rule
file, lowers it to a plan and generates text (docs/kt-run.md).

  --model DIR             model directory (config.json, *.safetensors, tokenizer.json)
  --rules FILE            injection rules (default: the family's rules/*-cpu.yaml)
  --plan FILE             run a plan written by `kt-opt --plan` instead of compiling
  --dtype f32|bf16        weight precision of linears, embeddings and experts (f32)
  --experts-dir DIR       load the routed experts packed by kt-quant from DIR
                          instead of quantising them at load (docs/kt-quant.md)
  --int8-activations int8|float
                          INT8 experts (and INT4 experts on an AVX512-VNNI
                          CPU): quantise activations to 8 bits too (int8,
                          default, fastest) or keep them (float: the
                          weights' rounding only; docs/kernels.md)
  --int8-act-block N      INT8 experts with many tokens (AMX / VNNI panels):
                          activation elements per 8-bit scale, a multiple
                          of 64 (256); 0: one per token, ~10% faster
                          prefill, less exact (docs/kernels.md)
  --prompt TEXT           prompt text (tokenized with the model's special tokens)
  --prompt-ids 1,2,3      prompt token ids
  --chat                  chat: with --prompt one turn through the chat template,
                          else an interactive conversation on stdin
  --system TEXT           system message for --chat
  --max-new-tokens N      tokens to generate (128)
  --temperature T         0 = greedy (default)
  --top-k K, --top-p P, --repetition-penalty R, --seed S
  --stop TEXT             stop when TEXT appears (repeatable); EOS always stops
  --ignore-eos            keep generating after EOS
  --print-ids             print the generated ids as one line instead of text
  --dump-logits F.npy     write the prompt's logits, float32 [prompt tokens, vocab]
  --tokenize TEXT         print TEXT's ids as a JSON array and exit
  --threads N             CPU threads (default: all cores)
  --context N             context length (default: max_position_embeddings)
  --quiet                 no speed or NUMA split report on stderr
)";

template <class T> static bool parseNum(const char *s, T &out) {
  const char *end = s + std::strlen(s);
  auto r = std::from_chars(s, end, out);
  return r.ec == std::errc() && r.ptr == end;
}

std::optional<std::string> parseOptions(int argc, char **argv, RunOptions &o,
                                        bool &help) {
  help = false;
  kttools::ArgCursor args(argc, argv);
  while (args.next()) {
    const std::string &a = args.name();
    auto flag = [&](bool &b) { return args.flag(b); };
    auto value = [&](std::string &out) { return args.value(out); };
    std::string v;
    std::optional<std::string> err;
    auto num = [&](auto &dst) -> std::optional<std::string> {
      if (auto e = value(v))
        return e;
      if (!parseNum(v.c_str(), dst))
        return a + ": '" + v + "' is not a valid number";
      return std::nullopt;
    };
    if (a == "--help" || a == "-h") {
      help = true;
      return std::nullopt;
    } else if (a == "--model") {
      err = value(o.model);
    } else if (a == "--rules") {
      err = value(o.rules);
    } else if (a == "--experts-dir") {
      err = value(o.expertsDir);
    } else if (a == "--int8-activations") {
      if (!(err = value(v))) {
        if (v == "int8" || v == "float")
          o.int8FloatActivations = v == "float";
        else
          err = "--int8-activations must be int8 or float, not '" + v + "'";
      }
    } else if (a == "--int8-act-block") {
      o.int8ActBlock.emplace();
      err = num(*o.int8ActBlock);
    } else if (a == "--plan") {
      err = value(o.planFile);
    } else if (a == "--dtype") {
      if (!(err = value(v))) {
        if (v == "f32" || v == "fp32" || v == "float32")
          o.dtype = kt::ComputeType::F32;
        else if (v == "bf16" || v == "bfloat16")
          o.dtype = kt::ComputeType::BF16;
        else
          err = "--dtype must be f32 or bf16, not '" + v + "'";
      }
    } else if (a == "--prompt") {
      if (!(err = value(v)))
        o.prompt = v;
    } else if (a == "--prompt-ids") {
      if (!(err = value(v))) {
        std::vector<int64_t> ids;
        size_t p = 0;
        while (p <= v.size() && !err) {
          size_t q = v.find_first_of(", ", p);
          if (q == std::string::npos)
            q = v.size();
          std::string item = v.substr(p, q - p);
          int64_t id;
          if (!item.empty()) {
            if (!parseNum(item.c_str(), id))
              err = "--prompt-ids: '" + item + "' is not an integer";
            else
              ids.push_back(id);
          }
          p = q + 1;
        }
        if (!err && ids.empty())
          err = "--prompt-ids: no ids given";
        o.promptIds = ids;
      }
    } else if (a == "--tokenize") {
      if (!(err = value(v)))
        o.tokenize = v;
    } else if (a == "--chat") {
      err = flag(o.chat);
    } else if (a == "--system") {
      err = value(o.system);
    } else if (a == "--max-new-tokens") {
      err = num(o.maxNewTokens);
    } else if (a == "--temperature") {
      err = num(o.sampling.temperature);
    } else if (a == "--top-k") {
      err = num(o.sampling.topK);
    } else if (a == "--top-p") {
      err = num(o.sampling.topP);
    } else if (a == "--repetition-penalty") {
      err = num(o.sampling.repetitionPenalty);
    } else if (a == "--seed") {
      err = num(o.sampling.seed);
    } else if (a == "--stop") {
      if (!(err = value(v)))
        o.stops.push_back(v);
    } else if (a == "--ignore-eos") {
      err = flag(o.ignoreEos);
    } else if (a == "--print-ids") {
      err = flag(o.printIds);
    } else if (a == "--quiet") {
      err = flag(o.quiet);
    } else if (a == "--dump-logits") {
      err = value(o.dumpLogits);
    } else if (a == "--threads") {
      err = num(o.threads);
    } else if (a == "--context") {
      err = num(o.context);
    } else {
      err = "unknown option '" + a + "' (see --help)";
    }
    if (err)
      return err;
  }
  if (o.model.empty())
    return std::string("--model DIR is required");
  int modes = (o.prompt ? 1 : 0) + (o.promptIds ? 1 : 0) + (o.tokenize ? 1 : 0);
  if (o.tokenize && modes > 1)
    return std::string("--tokenize cannot be combined with a prompt");
  if (o.prompt && o.promptIds)
    return std::string("give --prompt or --prompt-ids, not both");
  if (!modes && !o.chat)
    return std::string("nothing to do: give --prompt, --prompt-ids, --chat "
                       "or --tokenize");
  if (o.chat && o.promptIds)
    return std::string("--chat takes text (--prompt), not --prompt-ids");
  if (o.maxNewTokens < 0)
    return std::string("--max-new-tokens must be >= 0");
  if (o.sampling.temperature < 0)
    return std::string("--temperature must be >= 0");
  if (o.sampling.topP <= 0 || o.sampling.topP > 1)
    return std::string("--top-p must be in (0, 1]");
  if (o.sampling.topK < 0)
    return std::string("--top-k must be >= 0");
  if (o.sampling.repetitionPenalty <= 0)
    return std::string("--repetition-penalty must be > 0");
  if (o.int8ActBlock && (*o.int8ActBlock < 0 ||
                         !kt::kernels::int8PanelBlockValid(*o.int8ActBlock)))
    return "--int8-act-block must be 0 or a positive multiple of 64, not " +
           std::to_string(*o.int8ActBlock);
  if (o.threads < 0 || o.context < 0)
    return std::string("--threads and --context must be >= 0");
  return std::nullopt;
}

} // namespace ktrun
