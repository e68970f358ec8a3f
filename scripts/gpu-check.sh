#!/usr/bin/env bash
# One command that checks advml on a machine with an NVIDIA GPU (docs/gpu.md):
#   1. nvidia-smi       a GPU and its driver are there
#   2. libtorch         the libtorch chosen (LIBTORCH, default: the Python torch) has CUDA
#   3. build            the addon built against it, into a separate folder
#   4. engine-tests     the engine's tests that look at CUDA, run on that addon
#   5. devices          the addon sees the GPU
#   6. algorithm1       one plain and one Algorithm 1 training step on cuda:0, against the CPU
#   7. bf16             the same step under bf16 autocast on cuda:0
#   8. nccl             an all-reduce between two processes over NCCL
# and prints a table of what passed, failed or was skipped, and why.
#
# Usage: scripts/gpu-check.sh [--libtorch SPEC] [--python EXE] [--out DIR] [--addon FILE] [--in-place]
#   --libtorch SPEC  what LIBTORCH is set to for the build: python (default), python:EXE, or a directory
#                    (native/torch-config.cjs); an exported LIBTORCH is used when no option is given
#   --python EXE     the same as --libtorch python:EXE
#   --out DIR        where the build and the logs go (default runs/gpu-check)
#   --addon FILE     use this prebuilt advml.node instead of building one
#   --in-place       build into the checkout's build/Release (shared with everyone's tests; only when asked)
# Exit status: 0 every step passed or was skipped, 1 a step failed, 2 usage error,
#              3 no NVIDIA GPU (nothing else is tried).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

SPEC=${LIBTORCH:-python}
OUT=runs/gpu-check
ADDON=""
IN_PLACE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --libtorch) SPEC=${2:?--libtorch needs a value}; shift 2 ;;
    --python) SPEC="python:${2:?--python needs an interpreter}"; shift 2 ;;
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --addon) ADDON=${2:?--addon needs a file}; shift 2 ;;
    --in-place) IN_PLACE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs

STEPS=(nvidia-smi libtorch build engine-tests devices algorithm1 bf16 nccl)
declare -A STATUS DETAIL SECONDS_TAKEN
failed=0

record() { # step status detail
  STATUS[$1]=$2
  DETAIL[$1]=$3
  if [ "$2" = failed ]; then failed=1; fi
  printf 'gpu-check: %-13s %s%s\n' "$1" "$2" "${3:+ ($3)}"
}

skip_rest() { # reason: every step not yet recorded is skipped for it
  for s in "${STEPS[@]}"; do
    if [ -z "${STATUS[$s]:-}" ]; then STATUS[$s]=skipped; DETAIL[$s]=$1; fi
  done
}

summary() {
  echo
  printf '%-13s %-8s %6s  %s\n' step result time why
  printf '%-13s %-8s %6s  %s\n' ------------- -------- ------ ----------------------------------------
  for s in "${STEPS[@]}"; do
    local t=${SECONDS_TAKEN[$s]:-}
    printf '%-13s %-8s %6s  %s\n' "$s" "${STATUS[$s]:-skipped}" "${t:+${t}s}" "${DETAIL[$s]:-}"
  done
  echo
  echo "logs: $LOGS"
}

# run_step NAME LOG COMMAND...: the command's output goes to LOG; returns its status.
run_step() {
  local name=$1 log=$2 start rc=0
  shift 2
  start=$SECONDS
  "$@" >"$log" 2>&1 || rc=$?
  SECONDS_TAKEN[$name]=$((SECONDS - start))
  return "$rc"
}

last_line() { grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-240; }

# 1. The GPU.
if ! command -v nvidia-smi >/dev/null 2>&1; then
  record nvidia-smi failed 'no NVIDIA GPU (nvidia-smi not found)'
  skip_rest 'no NVIDIA GPU'
  summary
  echo "gpu-check: no NVIDIA GPU (nvidia-smi not found); nothing else was tried" >&2
  exit 3
fi
if ! gpus=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>"$LOGS/nvidia-smi.log") || [ -z "$gpus" ]; then
  record nvidia-smi failed "no NVIDIA GPU (nvidia-smi lists none: $(last_line "$LOGS/nvidia-smi.log" 2>/dev/null || true))"
  skip_rest 'no NVIDIA GPU'
  summary
  echo "gpu-check: no NVIDIA GPU (nvidia-smi lists none); nothing else was tried" >&2
  exit 3
fi
GPU_COUNT=$(printf '%s\n' "$gpus" | wc -l)
record nvidia-smi passed "$GPU_COUNT GPU(s): $(printf '%s\n' "$gpus" | head -n 1)"

if [ ! -x node_modules/.bin/tsx ] || [ ! -x node_modules/.bin/node-gyp ]; then
  record libtorch failed 'node_modules is missing tsx or node-gyp: run npm install (or scripts/setup.sh) first'
  skip_rest 'set-up incomplete'
  summary
  exit 1
fi

# 2. The libtorch: native/torch-config.cjs decides, as binding.gyp will.
export LIBTORCH=$SPEC
if ! run_step libtorch "$LOGS/torch-config.json" node native/torch-config.cjs describe; then
  record libtorch failed "LIBTORCH=$SPEC: $(last_line "$LOGS/torch-config.json")"
  skip_rest 'no libtorch to build against'
  summary
  exit 1
fi
field() { node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = process.argv[2].split(".").reduce((o, k) => o == null ? o : o[k], d); console.log(v == null ? "" : v)' "$LOGS/torch-config.json" "$1"; }
TORCH_ROOT=$(field root)
TORCH_VERSION=$(field torchVersion)
if [ "$(field cuda)" != true ]; then
  record libtorch failed "LIBTORCH=$SPEC (${TORCH_ROOT:-Debian}) has no CUDA libraries (lib/libtorch_cuda.so); see $LOGS/torch-config.json"
  skip_rest 'libtorch has no CUDA'
  summary
  exit 1
fi
record libtorch passed "LIBTORCH=$SPEC: ${TORCH_ROOT:-Debian} ${TORCH_VERSION:+torch $TORCH_VERSION }CUDA $(field cudaVersion) ABI $(field abi), NCCL $( [ "$(field nccl.enabled)" = true ] && echo on || echo off)"

# 3. The addon, built where it disturbs no one (the checkout's build/Release is shared).
if [ -n "$ADDON" ]; then
  if [ -f "$ADDON" ]; then
    ADDON=$(cd "$(dirname "$ADDON")" && pwd)/$(basename "$ADDON")
    record build skipped "--addon $ADDON given"
  else
    record build failed "--addon $ADDON: no such file"
    skip_rest 'no addon'
    summary
    exit 1
  fi
else
  if [ "$IN_PLACE" = 1 ]; then
    BUILD_SRC=$REPO
  else
    BUILD_SRC=$OUT/src
    rm -rf "$BUILD_SRC"
    mkdir -p "$BUILD_SRC"
    cp -R binding.gyp native "$BUILD_SRC"/
    ln -s "$REPO/node_modules" "$BUILD_SRC/node_modules"
  fi
  # node-gyp run directly misses npm's configuration: pass on its nodedir (Node's headers) when one is set.
  NODEDIR=$(npm config get nodedir 2>/dev/null || true)
  case "$NODEDIR" in undefined|null) NODEDIR="" ;; esac
  if run_step build "$LOGS/build.log" bash -c 'cd "$1" && "$2/node_modules/.bin/node-gyp" rebuild -j "$(nproc)" ${3:+--nodedir="$3"}' _ "$BUILD_SRC" "$REPO" "$NODEDIR" \
      && [ -f "$BUILD_SRC/build/Release/advml.node" ]; then
    ADDON=$BUILD_SRC/build/Release/advml.node
    record build passed "$ADDON"
  else
    record build failed "node-gyp: $(grep -m1 -E 'error|Error' "$LOGS/build.log" | cut -c1-160 || last_line "$LOGS/build.log"); see $LOGS/build.log"
    skip_rest 'the build failed'
    summary
    exit 1
  fi
fi
export ADVML_ADDON=$ADDON
unset ADVML_GPU_CHECK_DEVICE ADVML_GPU_CHECK_BACKEND  # the driver's CPU self-test knobs: not here

# 4. The engine's tests that look at CUDA (they adapt to cudaDeviceCount(): here they meet a device).
mapfile -t cuda_tests < <(grep -rlE "cuda(DeviceCount|Available|HasBf16)|'cuda" test --include='*.test.ts' | grep -vx 'test/native/torch-config.test.ts' | sort)
if [ ${#cuda_tests[@]} -eq 0 ]; then
  record engine-tests skipped 'no test under test/ mentions CUDA'
elif run_step engine-tests "$LOGS/engine-tests.log" node --import tsx --test --test-concurrency=1 "${cuda_tests[@]}"; then
  record engine-tests passed "$(grep -E '^# (pass|skipped)' "$LOGS/engine-tests.log" | tr '\n' ' ')in ${cuda_tests[*]}"
else
  record engine-tests failed "$(grep -E '^# (pass|fail)' "$LOGS/engine-tests.log" | tr '\n' ' ')see $LOGS/engine-tests.log"
fi

# 5-8. The CUDA steps, on the library API (scripts/gpu-check.ts).
driver() { node --import tsx scripts/gpu-check.ts "$@"; }
if run_step devices "$LOGS/devices.log" driver devices; then
  record devices passed "$(grep '^devices:' "$LOGS/devices.log" | cut -c10-170)"
else
  record devices failed "$(grep -m1 '^FAIL' "$LOGS/devices.log" | cut -c1-160 || last_line "$LOGS/devices.log")"
  skip_rest 'the addon sees no CUDA device'
  summary
  exit 1
fi

driver_step() { # name log args...
  local name=$1 log=$2 rc=0
  shift 2
  run_step "$name" "$log" driver "$@" || rc=$?
  if [ "$rc" = 0 ]; then
    record "$name" passed "$(grep -E 'largest weight difference|both ranks hold' "$log" | tail -n 1 | cut -c1-160)"
  elif [ "$rc" = 77 ]; then
    record "$name" skipped "$(grep -m1 '^SKIP:' "$log" | cut -c7-200)"
  else
    record "$name" failed "$(grep -m1 '^FAIL' "$log" | cut -c7-200 || last_line "$log"); see $log"
  fi
}
driver_step algorithm1 "$LOGS/algorithm1.log" algorithm1
driver_step bf16 "$LOGS/bf16.log" bf16
if [ "$(field nccl.enabled)" != true ]; then
  record nccl skipped "the addon has no NCCL: $(field nccl.why)"
else
  driver_step nccl "$LOGS/nccl.log" nccl
fi

summary
exit "$failed"
