#!/bin/sh
# The main job on the bundled default model (the tiny DeepSeek-V2 fixture):
#  1. kt-opt: import it, apply the CPU rules (routed experts on kt.cpu_experts,
#     everything on the CPU) and print where every module goes and how many
#     weight bytes each device holds;
#  2. kt-run: compile the same way, run it on the CPU and generate text from a
#     prompt, printing prefill and decode speed.
# The fixture's weights are random (scripts/make_fixtures.py), so the text is
# gibberish; the logits match Hugging Face transformers (test/kt-run).
set -eu
cd "$(dirname "$0")/.."
MODEL=test/fixtures/models/deepseek-v2
RULES=rules/deepseek-v2-lite-cpu.yaml
echo "== kt-opt: placement and memory ($RULES)"
build/tools/kt-opt/kt-opt "$MODEL" --rules "$RULES" \
  --placement-report=- --memory-report=- -o build/deepseek-v2.kt.mlir
echo "kt IR written to build/deepseek-v2.kt.mlir"
echo "== kt-run: generation on the CPU"
build/tools/kt-run/kt-run --model "$MODEL" --rules "$RULES" \
  --prompt "Hello world! The quick brown fox" --max-new-tokens 32
