#!/bin/sh
# The main job on the bundled default model: import the tiny DeepSeek-V2
# fixture, apply the GPU+CPU rules and print where every module goes and
# how many weight bytes each device holds.
set -eu
cd "$(dirname "$0")/.."
build/tools/kt-opt/kt-opt test/fixtures/models/deepseek-v2 \
  --rules rules/deepseek-v2-lite.yaml \
  --placement-report=- --memory-report=- -o build/deepseek-v2.kt.mlir
echo "kt IR written to build/deepseek-v2.kt.mlir"
