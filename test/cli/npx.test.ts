/**
 * `npx advml` in a checkout: npm links the checkout into its npx cache and
 * runs the package's install step there, which must not rebuild the addon
 * (scripts/install-addon.cjs). Runs real npx, offline, on a copy of this
 * checkout as a fresh clone has it after scripts/setup.sh.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'advml-npx-'));
const checkout = join(tmp, 'advml');
const addon = join(checkout, 'build', 'Release', 'advml.node');

/** The environment of a user's shell: no npm_* variables inherited from an enclosing `npm test`. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  delete env.ADVML_ADDON;
  return { ...env, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false', ...extra };
}

before(() => {
  for (const p of ['build/Release/advml.node', 'dist/cli/main.js', 'node_modules']) {
    assert.ok(existsSync(join(repo, p)), `${p} is missing: run scripts/setup.sh first`);
  }
  // The working tree as a clone of it would have it: tracked and untracked, not ignored
  // (a node_modules that is a symlink escapes the ignore rule 'node_modules/').
  const ls = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo, encoding: 'utf8' });
  assert.equal(ls.status, 0, ls.stderr);
  for (const f of ls.stdout.split('\0').filter((f) => f !== '' && f !== 'node_modules' && existsSync(join(repo, f)))) {
    mkdirSync(dirname(join(checkout, f)), { recursive: true });
    cpSync(join(repo, f), join(checkout, f), { preserveTimestamps: true });
  }
  // What scripts/setup.sh leaves: the built addon and TypeScript, the dependencies.
  cpSync(join(repo, 'build'), join(checkout, 'build'), { recursive: true, preserveTimestamps: true });
  cpSync(join(repo, 'dist'), join(checkout, 'dist'), { recursive: true, preserveTimestamps: true });
  symlinkSync(realpathSync(join(repo, 'node_modules')), join(checkout, 'node_modules'), 'dir');
});

test('npx advml --help in a checkout installs it into the npx cache without rebuilding the addon', () => {
  const cache = join(tmp, 'npm-cache');
  const was = statSync(addon);
  const r = spawnSync('npx', ['advml', '--help'], {
    cwd: checkout,
    encoding: 'utf8',
    timeout: 60_000,
    // An empty cache makes this npx's first run; offline: a local folder needs no registry.
    env: userEnv({ npm_config_cache: cache, npm_config_offline: 'true', npm_config_foreground_scripts: 'true' }),
  });
  const output = r.stdout + r.stderr;
  assert.equal(r.status, 0, output);
  assert.match(r.stdout, /^Usage: advml <command> \[options\]/m);
  assert.match(r.stdout, /^ {2}attack +make adversarial images/m);
  // The install step ran (so the case this guards happened) and decided not to build.
  assert.match(output, /advml: native addon found at .*build\/Release\/advml\.node; not rebuilding/);
  assert.doesNotMatch(output, /gyp|CXX\(target\)/);
  const now = statSync(addon);
  assert.equal(now.ino, was.ino, 'build/Release/advml.node was replaced');
  assert.equal(now.mtimeMs, was.mtimeMs, 'build/Release/advml.node was rewritten');
  assert.deepEqual(readdirSync(join(checkout, 'build')).sort(), readdirSync(join(repo, 'build')).sort());
  // npx ran the checkout itself, linked into its cache, not some other advml.
  const npx = readdirSync(join(cache, '_npx'));
  assert.equal(npx.length, 1, `npx cache: ${npx.join(', ')}`);
  assert.equal(realpathSync(join(cache, '_npx', npx[0] as string, 'node_modules', 'advml')), realpathSync(checkout));
});

test('the install step builds the addon exactly when neither ADVML_ADDON nor build/Release has one', () => {
  // A stand-in for node-gyp that records how it was called: nothing compiles.
  const log = join(tmp, 'gyp-calls.jsonl');
  const fakeGyp = join(tmp, 'fake-node-gyp.cjs');
  writeFileSync(fakeGyp, `require('node:fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd() }) + '\\n');\n`);
  const calls = (): { argv: string[]; cwd: string }[] =>
    existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; cwd: string }) : [];
  const install = (env: Record<string, string>): string => {
    const r = spawnSync(process.execPath, [join(checkout, 'scripts', 'install-addon.cjs')], {
      cwd: tmp, encoding: 'utf8', timeout: 30_000, env: userEnv({ npm_config_node_gyp: fakeGyp, ...env }),
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return r.stdout;
  };

  assert.match(install({}), /native addon found at .*build\/Release\/advml\.node/);
  assert.equal(calls().length, 0);

  const kept = join(tmp, 'kept.node');
  renameSync(addon, kept);
  try {
    assert.match(install({ ADVML_ADDON: kept }), /native addon found at .*kept\.node/);
    assert.equal(calls().length, 0, 'built although ADVML_ADDON names an addon');

    assert.match(install({}), /building the native addon/);
    assert.equal(calls().length, 1);
    assert.equal(calls()[0]?.argv[0], 'rebuild');
    assert.equal(realpathSync(calls()[0]?.cwd as string), realpathSync(checkout), 'node-gyp must run in the package root');

    assert.match(install({ ADVML_ADDON: join(tmp, 'nowhere.node') }), /building the native addon \(no addon at .*nowhere\.node or /);
    assert.equal(calls().length, 2, 'an ADVML_ADDON that points nowhere must not stop the build');
  } finally {
    renameSync(kept, addon);
  }
});
