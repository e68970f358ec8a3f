#!/usr/bin/env bash
# The test command: set up (idempotent), type-check, then run every test file
# with Node's test runner, which prints how many tests ran, passed and failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=1 "$@" "${files[@]}"
