#!/usr/bin/env bash
# Installs everything advml needs on a fresh Debian 12 machine and builds it:
# Debian's libtorch (the engine) and PyTorch (the benchmark peer and the
# reference for interchange tests), the npm dependencies, the native addon and
# the TypeScript. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
# libopenblas0-pthread becomes the libblas.so.3 that libtorch calls: several times faster at batch 1 (docs/benchmarks.md).
for pkg in libtorch-dev libgloo-dev libopenblas0-pthread python3-torch g++ make python3 dataset-fashion-mnist python3-skimage python3-torchvision python3-pil chromium libjpeg62-turbo-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  npm install --no-fund --no-audit
fi

# Rebuild the addon when a native source is newer than the binary.
addon=build/Release/advml.node
if [ ! -f "$addon" ] || [ -n "$(find native binding.gyp -newer "$addon" 2>/dev/null | head -n 1)" ]; then
  echo "setup: building the native addon against libtorch"
  npx node-gyp rebuild -j "$(nproc)"
fi

echo "setup: compiling TypeScript"
npx tsc -p tsconfig.json
npm run build:web --silent
echo "setup: done"
