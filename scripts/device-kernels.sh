#!/bin/bash
# Builds the runtime (-DKT_BUILD_COMPILER=OFF) on the GPU machine and runs the
# CPU kernel tests and benchmark there (its CPU has more cores and, unlike the
# 2-core development machine, usually AVX512 / VNNI / AMX).
#
# The GPU machine's image has CMake and ninja but none of kt's C++ packages
# and cannot fetch any, so they travel with the tree:
#
#   1. here (Debian 12 with scripts/install-deps.sh done), in the repo root:
#        scripts/device-kernels.sh stage
#        grep -qx '/.kt-deps/' .git/info/exclude || echo '/.kt-deps/' >> .git/info/exclude
#      copies headers, libraries and CMake package files of GoogleTest,
#      Google Benchmark, nlohmann-json, yaml-cpp, PCRE2 and utf8proc into .kt-deps/
#      (~6 MB), a prefix that CMAKE_PREFIX_PATH can point at.
#   2. device tool: run(command="scripts/device-kernels.sh run",
#                       carry=[".kt-deps"], timeout_s=600)
#      configures build-device/, builds KtKernelsTests and kt-bench-moe,
#      runs both; logs, JSON and the CPU's flags land in $OUT (or
#      build-device/out when OUT is unset).
#
# Checked so far only on the development machine (both steps, in a copy of
# the tree: CMake found every package under .kt-deps/, tests and benchmark
# ran); not yet on the GPU machine.
#
# hwloc is not staged: KtKernels then reads the topology from /sys and
# places NUMA slices by first touch only (docs/kernels.md).
#
#   3. optional, device tool: run(command="scripts/device-kernels.sh threads", ...)
#      builds as in 2, prints the CPU topology (lscpu, sibling lists) and runs
#      the AMX ceilings, micro-kernels and prefill (and the PyTorch peer) once
#      per placement of KT_PLACEMENTS ("threads:cpulist" words).
#
#   4. optional: `KT_AB_VAR=NAME scripts/device-kernels.sh ab` times the
#      benchmark in alternating rounds under each value of an environment
#      switch and ends with each value's per-round ratios to the first
#      value (see ab() and ab_pairs() below).
#   5. optional: `scripts/device-kernels.sh peer` times kt and PyTorch in
#      alternating rounds and prints each round's speed-ups (see peer()).
#
# Environment for `run`: KT_BENCH_MIN_TIME (default 0.2), KT_BENCH_FILTER
# (default: all), KT_TESTS=0 to skip the tests, JOBS (default: nproc),
# KT_PEER_TIMEOUT (default 240 s),
# KT_PEER=0 to skip the PyTorch peer, KT_BENCH_REPS=N to run every benchmark
# N times in random interleaved order (a noisy machine then hits all methods
# alike) and report mean / median / stddev / cv aggregates only.
# After the benchmark, `run` times the same MoE layer in PyTorch bf16
# (scripts/moe_peer_torch.py, 16 threads) when python3 can import torch, and
# saves its JSON as $OUT/moe_peer_torch.json.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=$PWD/.kt-deps
MULTI=x86_64-linux-gnu
out=${OUT:-$PWD/build-device/out}

stage() {
  # Staging copies this machine's packages; where they are missing (the GPU
  # machine) it would only delete the carried copy.
  [ -d /usr/include/gtest ] && [ -d /usr/include/benchmark ] || {
    echo "stage: no GoogleTest / Google Benchmark headers here; run it on the development machine (scripts/install-deps.sh)" >&2
    exit 2
  }
  rm -rf "$DEPS"
  mkdir -p "$DEPS/include" "$DEPS/lib/$MULTI/cmake" "$DEPS/share/cmake" "$DEPS/bin"
  for h in gtest gmock benchmark yaml-cpp nlohmann pcre2.h utf8proc.h; do
    cp -a "/usr/include/$h" "$DEPS/include/"
  done
  for l in libgtest.a libgtest_main.a libgmock.a libgmock_main.a \
           libbenchmark_main.a libyaml-cpp.a libpcre2-8.a libutf8proc.a; do
    cp -a "/usr/lib/$MULTI/$l" "$DEPS/lib/$MULTI/"
  done
  cp -L "/usr/lib/$MULTI/libbenchmark.so.1.7.1" "$DEPS/lib/$MULTI/"
  ln -sf libbenchmark.so.1.7.1 "$DEPS/lib/$MULTI/libbenchmark.so.1debian"
  ln -sf libbenchmark.so.1.7.1 "$DEPS/lib/$MULTI/libbenchmark.so"
  # Plain lib/ too, for a CMake that does not know the Debian multiarch dir.
  for l in libyaml-cpp.a libpcre2-8.a libutf8proc.a; do
    cp -a "/usr/lib/$MULTI/$l" "$DEPS/lib/"
  done
  cp -a "/usr/lib/$MULTI/cmake/GTest" "/usr/lib/$MULTI/cmake/benchmark" \
        "$DEPS/lib/$MULTI/cmake/"
  cp -a /usr/share/cmake/nlohmann_json "$DEPS/share/cmake/"
  # FindPkgConfig is REQUIRED by cmake/KtDependencies.cmake but nothing is
  # looked up through it; a stand-in for machines without pkg-config.
  printf '#!/bin/sh\n[ "$1" = --version ] && echo 0.29.2 && exit 0\nexit 1\n' \
    > "$DEPS/bin/pkg-config"
  chmod +x "$DEPS/bin/pkg-config"
  du -sh "$DEPS"
}

# Configures build-device/ and builds KtKernelsTests and kt-bench-moe; CPU
# facts into $out/cpu.txt.
build() {
  [ -d "$DEPS" ] || { echo "no .kt-deps: run 'scripts/device-kernels.sh stage' here and carry it" >&2; exit 2; }
  mkdir -p "$out"
  local jobs=${JOBS:-$(nproc)}
  {
    echo "== $(date -u) on $(uname -n)"
    grep -m1 'model name' /proc/cpuinfo || true
    echo "cores: $(nproc)"
    grep -o -w -E 'avx2|fma|avx512[a-z_0-9]*|amx[a-z_0-9]*|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' '
    echo
  } | tee "$out/cpu.txt"
  local pc=()
  command -v pkg-config >/dev/null || pc=(-DPKG_CONFIG_EXECUTABLE="$DEPS/bin/pkg-config")
  cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DKT_BUILD_COMPILER=OFF -DKT_NUMA_VM_TESTS=OFF -DCMAKE_PREFIX_PATH="$DEPS" \
    -DCMAKE_LIBRARY_ARCHITECTURE=$MULTI "${pc[@]}" 2>&1 | tee "$out/configure.log"
  ninja -C build-device -j"$jobs" KtKernelsTests kt-bench-moe 2>&1 | tail -20 | tee "$out/build.log"
  export LD_LIBRARY_PATH="$DEPS/lib/$MULTI${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# One line per benchmark of a Google Benchmark JSON file (medians when it
# holds aggregates).
summarise() {
  python3 - "$1" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    if b.get("aggregate_name") in ("mean", "stddev"):
        continue
    if b.get("error_occurred"):
        print(b["name"], b.get("error_message", "error"))
        continue
    c = {k: b[k] for k in ("real_time", "GBps", "TFLOPS", "frac_of_peak",
                           "frac_of_ceiling", "frac_of_read_bw",
                           "x_vnni_peak", "x_fp32_fma_peak", "slices",
                           "threads", "tasks_per_s", "ns_per_iter") if k in b}
    c.update({k: b[k] for k in b if k.startswith("ms_") and b[k] > 0})
    print(b["name"], " ".join(f"{k}={v:.4g}" for k, v in c.items()), b.get("label", ""))
PY
}

# Prints the PyTorch peer's JSON ($1) a line per case.
summarise_peer() {
  python3 - "$1" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
print("torch", d["torch"], "threads", d["threads"], d.get("cpu_capability"))
for r in d["results"]:
    print(r["name"], f"ms={r['ms']:.4g} GBps={r['GBps']:.4g} TFLOPS={r['TFLOPS']:.4g}")
PY
}

# kt-bench-moe with JSON output, KT_BENCH_MIN_TIME (default $1) and
# KT_BENCH_REPS (interleaved repetitions, aggregates only); further
# arguments go to the benchmark. Prefix it with env / taskset as needed.
bench() {
  local min=$1
  shift
  build-device/bench/kt-bench-moe --benchmark_format=json \
    --benchmark_min_time="${KT_BENCH_MIN_TIME:-$min}" \
    ${KT_BENCH_REPS:+--benchmark_repetitions="$KT_BENCH_REPS" \
      --benchmark_enable_random_interleaving=true \
      --benchmark_report_aggregates_only=true} "$@"
}

run() {
  build
  set +e
  local trc=skipped
  if [ "${KT_TESTS:-1}" != 0 ]; then
    build-device/unittests/Kernels/KtKernelsTests 2>&1 | tee "$out/tests.log" | \
      grep -E '^\[  (PASSED|FAILED|SKIPPED) |info|skipped:'
    trc=${PIPESTATUS[0]}
  fi
  bench 0.2 ${KT_BENCH_FILTER:+--benchmark_filter="$KT_BENCH_FILTER"} \
    > "$out/bench_moe.json" 2> "$out/bench_moe.err"
  local brc=$?
  set -e
  summarise "$out/bench_moe.json"
  # PyTorch peer (bf16, same shapes), when this machine has torch.
  local prc=skipped
  if [ "${KT_PEER:-1}" = 0 ]; then
    echo "KT_PEER=0: PyTorch peer skipped"
  elif command -v python3 >/dev/null && python3 -c 'import torch' 2>/dev/null; then
    set +e
    timeout "${KT_PEER_TIMEOUT:-240}" python3 scripts/moe_peer_torch.py \
      > "$out/moe_peer_torch.json" 2> "$out/moe_peer_torch.err"
    prc=$?
    set -e
    summarise_peer "$out/moe_peer_torch.json"
  else
    echo "no python3 with torch: PyTorch peer skipped" | tee "$out/moe_peer_torch.err"
  fi
  echo "tests rc=$trc bench rc=$brc peer rc=$prc; files in $out"
  [ "$trc" = 0 -o "$trc" = skipped ] && [ "$brc" = 0 ]
}

# Thread placement study: how the CPU's hardware threads share cores, then
# the AMX ceilings, micro-kernels and prefill (and the PyTorch peer unless
# KT_PEER=0) under each placement of KT_PLACEMENTS, "threads:cpulist" words
# (default: all 16 CPUs; 8 threads on CPUs 0-7; 8 on the even CPUs).
threads() {
  build
  {
    lscpu | grep -E '^(Thread|Core|Socket|NUMA node|Model name|CPU\(s\)|On-line)' || true
    echo "siblings: $(cat /sys/devices/system/cpu/cpu*/topology/thread_siblings_list | sort -un | tr '\n' ' ')"
    echo "core ids: $(cat /sys/devices/system/cpu/cpu*/topology/core_id | tr '\n' ' ')"
  } | tee -a "$out/cpu.txt"
  local filter=${KT_BENCH_FILTER:-'^(ceiling/amx|micro/amx|moe/amx_(bf16|int8)/tokens:(512|2048))'}
  local p n cpus
  for p in ${KT_PLACEMENTS:-16:0-15 8:0-7 8:0,2,4,6,8,10,12,14}; do
    n=${p%%:*}; cpus=${p#*:}
    echo "== $n threads on CPUs $cpus"
    # A subshell pinned to the CPUs (bench is a function, not a program).
    (taskset -pc "$cpus" "$BASHPID" > /dev/null &&
      KT_BENCH_THREADS=$n bench 0.1 --benchmark_filter="$filter") \
      > "$out/threads_$n.${cpus//,/_}.json" 2>/dev/null || echo "bench rc=$?"
    summarise "$out/threads_$n.${cpus//,/_}.json"
    if [ "${KT_PEER:-1}" != 0 ]; then
      KT_PEER_THREADS=$n KT_PEER_TOKENS=${KT_PEER_TOKENS:-512,2048} \
        timeout "${KT_PEER_TIMEOUT:-240}" taskset -c "$cpus" \
        python3 scripts/moe_peer_torch.py > "$out/peer.json" 2>/dev/null &&
        summarise_peer "$out/peer.json"
    fi
  done
}

# A/B study of a run-time switch: KT_AB_ROUNDS (default 3) alternating
# rounds, each running the benchmark (KT_BENCH_FILTER, default the AMX
# prefill cases) once per value of KT_AB_VALUES (default "0 1") given to the
# environment variable KT_AB_VAR, so that drift of a noisy machine hits
# every value alike.
ab() {
  build
  local var=${KT_AB_VAR:?set KT_AB_VAR to the environment variable to vary}
  local filter=${KT_BENCH_FILTER:-'^moe/amx_(bf16|int8)/tokens:(512|2048)/'}
  local r v
  for r in $(seq "${KT_AB_ROUNDS:-3}"); do
    for v in ${KT_AB_VALUES:-0 1}; do
      echo "== round $r: $var=$v"
      (export "$var=$v" && bench 0.1 --benchmark_filter="$filter") \
        > "$out/ab_${r}_$v.json" 2>/dev/null || echo "bench rc=$?"
      summarise "$out/ab_${r}_$v.json"
    done
  done
  ab_pairs "${KT_AB_ROUNDS:-3}" ${KT_AB_VALUES:-0 1}
}

# After ab: per case and per value after the first, the ratio to the first
# value within each round (time of the whole call and of each phase that
# ran: the busy means, i.e. each thread's time inside the phase's tasks),
# the median over rounds and in how many rounds the value was faster. Only
# ratios within a round mean something on a machine whose speed drifts.
ab_pairs() {
  python3 - "$out" "$@" <<'PY' || true
import json, statistics, sys
out, rounds, values = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
keys = ["real_time", "ms_gate_up_busy_mean", "ms_down_busy_mean",
        "ms_quant_h", "ms_panels", "ms_prepare"]
def load(r, v):
    try:
        d = json.load(open(f"{out}/ab_{r}_{v}.json"))["benchmarks"]
    except (OSError, ValueError, KeyError):
        return {}
    return {b["run_name"]: b for b in d
            if b.get("aggregate_name") in (None, "median")
            and not b.get("error_occurred")}
runs = {(r, v): load(r, v) for r in range(1, rounds + 1) for v in values}
base = values[0]
for v in values[1:]:
    names = sorted({n for (r, w), d in runs.items() if w == v for n in d})
    for n in names:
        for k in keys:
            xs = [runs[(r, v)][n][k] / runs[(r, base)][n][k]
                  for r in range(1, rounds + 1)
                  if n in runs[(r, v)] and n in runs[(r, base)]
                  and runs[(r, base)][n].get(k, 0) > 0.05
                  and k in runs[(r, v)][n]]
            if not xs:
                continue
            print(f"{n} {k}: {v} / {base} per round " +
                  " ".join(f"{x:.3f}" for x in xs) +
                  f", median {statistics.median(xs):.3f}, faster in "
                  f"{sum(x < 1 for x in xs)} of {len(xs)}")
PY
}

# kt against PyTorch in alternating rounds: KT_PEER_ROUNDS (default 3)
# rounds of the benchmark (KT_BENCH_FILTER, default the AMX prefill cases;
# KT_BENCH_REPS applies) followed by the PyTorch peer (KT_PEER_TOKENS,
# default 512,2048), then each round's speed-ups (PyTorch ms / kt ms) and
# their median: the lease's speed drifts between and within calls, so a
# ratio means something only between runs close in time.
peer() {
  build
  local filter=${KT_BENCH_FILTER:-'^(moe|qwen3_30b_a3b)/amx_(bf16|int8)/tokens:(512|2048)/'}
  local r
  for r in $(seq "${KT_PEER_ROUNDS:-3}"); do
    echo "== round $r"
    bench 0.1 --benchmark_filter="$filter" > "$out/peer_${r}_kt.json"       2>/dev/null || echo "bench rc=$?"
    KT_PEER_TOKENS=${KT_PEER_TOKENS:-512,2048}       timeout "${KT_PEER_TIMEOUT:-240}" python3 scripts/moe_peer_torch.py       > "$out/peer_${r}_torch.json" 2>/dev/null || echo "peer rc=$?"
  done
  python3 - "$out" "${KT_PEER_ROUNDS:-3}" <<'PY' || true
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ratios = {}
for r in range(1, rounds + 1):
    try:
        kt = json.load(open(f"{out}/peer_{r}_kt.json"))["benchmarks"]
        torch = json.load(open(f"{out}/peer_{r}_torch.json"))["results"]
    except (OSError, ValueError, KeyError) as e:
        print(f"round {r}: no result ({e})")
        continue
    ref = {}
    for t in torch:  # e.g. moe/torch_bf16/tokens:2048
        model, _, tok = t["name"].split("/")
        ref[(model, tok)] = t["ms"]
    for b in kt:
        if b.get("error_occurred") or b.get("aggregate_name") not in (None, "median"):
            continue
        model, method, tok = b["name"].split("/")[:3]
        if (model, tok) not in ref:
            continue
        x = ref[(model, tok)] / b["real_time"]
        key = f"{model}/{method}/{tok}"
        ratios.setdefault(key, []).append(x)
        print(f"round {r}: {key} kt {b['real_time']:.4g} ms, torch {ref[(model, tok)]:.4g} ms: {x:.2f}x")
for key, xs in sorted(ratios.items()):
    print(f"{key}: speed-up per round " + " / ".join(f"{x:.2f}" for x in xs) +
          f", median {statistics.median(xs):.2f}x")
PY
}

case "${1:-}" in
  stage) stage ;;
  run) run ;;
  threads) threads ;;
  ab) ab ;;
  peer) peer ;;
  *) echo "usage: $0 stage|run|threads|ab|peer" >&2; exit 2 ;;
esac
