#!/bin/bash
# Runs kt-run's tests and the kt-run vs Hugging Face benchmark on the GPU
# machine's CPU (16 cores, AVX512/AMX). kt-run and the test programs are
# built here (they need only glibc) and carried:
#   here:   cmake --build build --target kt-run KtCpuOpsTests KtExecTests KtKernelsTests
#           scripts/device-kt-run.sh stage        # copies them to .carry/
#   device: run(command="scripts/device-kt-run.sh run", carry=[".carry"])
# Results land in $OUT: tests.log, parity.log, bench.json, cpu.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
stage() {
  rm -rf .carry && mkdir -p .carry
  cp build/tools/kt-run/kt-run build/unittests/CpuOps/KtCpuOpsTests \
     build/unittests/Exec/KtExecTests build/unittests/Kernels/KtKernelsTests .carry/
  du -sh .carry
}
run() {
  local out=${OUT:-/tmp/kt-out}
  mkdir -p "$out"
  { grep -m1 'model name' /proc/cpuinfo; echo "cores: $(nproc)";
    grep -o -w -E 'avx512f|avx512_bf16|avx512_vnni|amx_tile|amx_int8|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; } > "$out/cpu.txt"
  # The unit tests find the fixtures where they were built.
  mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
  {
    for t in KtCpuOpsTests KtExecTests KtKernelsTests; do
      echo "== $t"; .carry/$t --gtest_brief=1 2>&1 | tail -5
    done
  } > "$out/tests.log" 2>&1
  {
    for m in deepseek-v2 deepseek-v3 qwen2-moe qwen3-moe qwen3-moe-fused mixtral llama qwen3; do
      ids=$(grep -o "prompt-ids [0-9,]*" test/kt-run/hf-parity-$m.test | cut -d' ' -f2)
      for dt in f32 bf16; do
        .carry/kt-run --model test/fixtures/models/$m --prompt-ids "$ids" --dtype $dt \
          --max-new-tokens 24 --ignore-eos --print-ids --dump-logits /tmp/$m.npy \
          --threads 16 > /tmp/$m.ids 2> /tmp/$m.err
        echo "$m $dt: $(python3 test/scripts/check_run.py test/fixtures/models/$m \
          --logits /tmp/$m.npy --ids /tmp/$m.ids --tol 1 --min-match 0) | $(grep prefill /tmp/$m.err)"
      done
    done
  } > "$out/parity.log" 2>&1
  python3 scripts/bench_kt_run_vs_hf.py --kt-run .carry/kt-run --rules-dir rules \
    --out /tmp/ktbench ${BENCH_ARGS:-} > "$out/bench.log" 2>&1
  cp /tmp/ktbench/bench.json "$out/" 2>/dev/null
  tail -3 "$out/tests.log"; cat "$out/parity.log"; tail -40 "$out/bench.log"
}
"$@"
