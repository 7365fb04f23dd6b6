#!/bin/sh
# Installs kt's build and test dependencies from Debian 12's packages (run as root).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config python3 python3-yaml \
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools \
  libyaml-cpp-dev libhwloc-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libzstd-dev zlib1g-dev >/dev/null
