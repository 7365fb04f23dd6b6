//===- Options.cpp - kt-quant command line -------------------------------===//

#include "Options.h"

#include "ArgCursor.h"

#include <charconv>
#include <cstring>

namespace ktquant {

const char *kUsage =
    R"(usage: kt-quant --model DIR --format int8|int4|bf16 --out DIR [options]

Packs a model's routed experts offline, one MoE layer at a time, into DIR:
one layer file per MoE layer and a manifest.json written last, for
`kt-run --experts-dir DIR` (docs/kt-quant.md).

  --model DIR        Hugging Face model directory
  --rules FILE       rules that place the experts (default: the family's
                     rules/*-cpu.yaml)
  --format F         int8 (per-channel), int4 (groups) or bf16
  --group N          INT4 group size: 32, 64 or 128 (default 64)
  --asym, --sym      INT4 asymmetric (default, as the AMXInt4 backend) or
                     symmetric groups
  --out DIR          output directory (created; a previous kt-quant output
                     there is replaced)
  --threads N        packing threads (default: all cores)
  --quiet            no per-layer progress
)";

std::optional<std::string> parseOptions(int argc, char **argv, QuantOptions &o,
                                        bool &help) {
  help = false;
  bool haveFormat = false, haveGroup = false, haveSym = false;
  o.config.groupSize = 64;
  o.config.asymmetric = true;
  o.config.tiles = kt::kernels::TilePacking::Never; // not stored
  kttools::ArgCursor args(argc, argv);
  while (args.next()) {
    const std::string &a = args.name();
    auto value = [&](std::string &out) { return args.value(out); };
    auto number = [&](int &out) -> std::optional<std::string> {
      std::string v;
      if (auto e = value(v))
        return e;
      auto r = std::from_chars(v.data(), v.data() + v.size(), out);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size())
        return a + ": '" + v + "' is not a valid number";
      return std::nullopt;
    };
    std::optional<std::string> err;
    std::string v;
    if (args.hasInlineValue() && (a == "--asym" || a == "--sym" || a == "--quiet"))
      return a + " takes no value";
    if (a == "--help" || a == "-h") {
      help = true;
      return std::nullopt;
    } else if (a == "--model") {
      err = value(o.model);
    } else if (a == "--rules") {
      err = value(o.rules);
    } else if (a == "--out") {
      err = value(o.out);
    } else if (a == "--format") {
      if (!(err = value(v))) {
        haveFormat = true;
        if (v == "int8")
          o.config.format = kt::kernels::WeightFormat::INT8;
        else if (v == "int4")
          o.config.format = kt::kernels::WeightFormat::INT4;
        else if (v == "bf16")
          o.config.format = kt::kernels::WeightFormat::BF16;
        else
          err = "--format must be int8, int4 or bf16, not '" + v + "'";
      }
    } else if (a == "--group") {
      haveGroup = true;
      if (!(err = number(o.config.groupSize)) && o.config.groupSize != 32 &&
          o.config.groupSize != 64 && o.config.groupSize != 128)
        err = "--group must be 32, 64 or 128, not " +
              std::to_string(o.config.groupSize);
    } else if (a == "--asym" || a == "--sym") {
      haveSym = true;
      o.config.asymmetric = a == "--asym";
    } else if (a == "--threads") {
      if (!(err = number(o.threads)) && o.threads < 0)
        err = "--threads must be >= 0";
    } else if (a == "--quiet") {
      o.quiet = true;
    } else {
      err = "unknown option '" + a + "' (see --help)";
    }
    if (err)
      return err;
  }
  if (o.model.empty())
    return std::string("--model DIR is required");
  if (!haveFormat)
    return std::string("--format int8|int4|bf16 is required");
  if (o.out.empty())
    return std::string("--out DIR is required");
  if ((haveGroup || haveSym) &&
      o.config.format != kt::kernels::WeightFormat::INT4)
    return std::string("--group, --asym and --sym apply to --format int4 "
                       "only");
  return std::nullopt;
}

} // namespace ktquant
