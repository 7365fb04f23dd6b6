#!/bin/sh
# Installs kt's build and test dependencies from Debian 12's packages (run as root).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config python3 python3-yaml \
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools \
  libyaml-cpp-dev libhwloc-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libzstd-dev zlib1g-dev \
  qemu-system-x86 >/dev/null

# The kernel that scripts/numa-vm.py boots for the tests that need two NUMA
# nodes: Debian's, taken from its package without installing it (installing
# a kernel would run boot-loader hooks).
KERNEL=/usr/local/lib/kt/vmlinuz
if [ ! -s "$KERNEL" ]; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends:/ { print $2; exit }')
  tmp=$(mktemp -d) && chmod 755 "$tmp" && { chown _apt "$tmp" 2>/dev/null || true; }
  (cd "$tmp" && apt-get download -qq "$pkg" &&
    dpkg-deb --fsys-tarfile ./*.deb | tar -x ./boot/)
  install -D -m 644 "$tmp"/boot/vmlinuz-* "$KERNEL"
  rm -rf "$tmp"
fi
