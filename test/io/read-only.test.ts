/**
 * Writes to a read-only file system are reported as such, naming the target
 * and the cause: not as ENOENT (what Node's recursive mkdir says when the
 * first folder it must make cannot be made), and not by the name of an
 * internal temporary file. The file system is a real one: a tmpfs mounted
 * read-only (tests run as root); without the privilege to mount, the test is
 * skipped and says why.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDirectorySync, writeFileAtomic, writeFileAtomicSync } from '../../src/io/index.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-ro-'));
let skip: string | false = false;
try {
  // Mounted writable first so that a file exists there to stay unchanged, then made read-only.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
} catch (e) {
  skip = `mounting a tmpfs needs privileges this process lacks (${String((e as { stderr?: unknown }).stderr ?? e).trim()})`;
}
const existing = join(dir, 'kept.json');
before(() => {
  if (skip) return;
  writeFileAtomicSync(existing, 'old');
  execFileSync('mount', ['-o', 'remount,ro', dir]);
});
after(() => {
  if (!skip) execFileSync('umount', [dir]);
  rmdirSync(dir);
});

test('atomic writes: EROFS, said of the folder, the previous file unchanged', { skip }, async () => {
  const expected = (target: string): string =>
    `writeFileAtomic: could not write '${target}': cannot create a file in '${dir}': read-only file system (EROFS); any previous file there is unchanged`;
  for (const target of [existing, join(dir, 'new.json')]) {
    assert.throws(() => writeFileAtomicSync(target, 'new'), { message: expected(target), code: 'EROFS' });
    await assert.rejects(writeFileAtomic(target, 'new'), { message: expected(target), code: 'EROFS' });
  }
  assert.equal(readFileSync(existing, 'utf8'), 'old');
});

test('folders: EROFS at the folder that could not be made, not ENOENT', { skip }, () => {
  for (const sub of ['run', 'run/a/b']) {
    const path = join(dir, sub);
    assert.throws(() => makeDirectorySync(path), { message: `could not create the folder '${path}': read-only file system (EROFS) at '${dir}'`, code: 'EROFS' });
  }
  makeDirectorySync(dir); // an existing folder is no error, read-only or not
});

test('the CLI says so too, at the option the user gave', { skip }, () => {
  const out = join(dir, 'runs', 'mnist');
  for (const command of ['train', 'sweep']) {
    const r = runCli([command, '--out', out]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `advml ${command}: could not create the folder '${out}': read-only file system (EROFS) at '${dir}'`);
  }
});
