#!/usr/bin/env node
// npm's `install` step for advml. Without an install script npm runs
// `node-gyp rebuild` for any package with a binding.gyp, on every install of
// the folder: `npx advml` in a checkout links the checkout into the npx cache
// and installs it, so that recompiled the addon for a minute and deleted build/
// under any advml process running there. This builds only when no addon is
// where src/engine/native.ts looks: ADVML_ADDON, then build/Release/advml.node.
// A checkout's stale addon is scripts/setup.sh's business (it compares times).
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');
const { availableParallelism } = require('node:os');

const root = join(__dirname, '..');
const candidates = [process.env.ADVML_ADDON, join(root, 'build', 'Release', 'advml.node')].filter(Boolean);
const found = candidates.find((p) => existsSync(p));
if (found) {
  console.log(`advml: native addon found at ${found}; not rebuilding`);
  process.exit(0);
}

// The node-gyp npm runs scripts with (npm_config_node_gyp), else the project's own.
let gyp = process.env.npm_config_node_gyp;
if (!gyp) {
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  } catch {
    console.error('advml: the native addon is missing and node-gyp was not found; run `npm run build:native` (scripts/setup.sh installs libtorch and builds it)');
    process.exit(1);
  }
}
console.log(`advml: building the native addon (no addon at ${candidates.join(' or ')})`);
const r = spawnSync(process.execPath, [gyp, 'rebuild', '-j', String(availableParallelism())], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
