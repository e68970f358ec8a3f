/** Reports of per-dataset sections: a run over one dataset replaces its section and keeps the others'. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSectionedReport } from '../../src/cli/common.js';

const TITLES = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST' };
const quiet = <T>(fn: () => T): T => {
  const log = console.log;
  console.log = () => {};
  try {
    return fn();
  } finally {
    console.log = log;
  }
};

test('a run over one dataset replaces its section and figures, keeps the other dataset\'s, and keeps the order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-sections-'));
  const out = join(dir, 'r.md');
  quiet(() => writeSectionedReport(out, '# Title v1\n', [
    { key: 'fashion-mnist', markdown: '## Fashion-MNIST, eps 25.5\n\nold fashion\n\n### Findings\n\nf', json: { v: 'fashion-1' } },
    { key: 'mnist', markdown: '## MNIST, eps 76.5\n\nmnist table', json: { v: 'mnist-1' } },
  ], TITLES));
  assert.equal(readFileSync(out, 'utf8'), '# Title v1\n\n## MNIST, eps 76.5\n\nmnist table\n\n## Fashion-MNIST, eps 25.5\n\nold fashion\n\n### Findings\n\nf\n');
  quiet(() => writeSectionedReport(out, '# Title v2', [{ key: 'fashion-mnist', markdown: '## Fashion-MNIST, eps 25.5\n\nnew fashion', json: { v: 'fashion-2' } }], TITLES));
  assert.equal(readFileSync(out, 'utf8'), '# Title v2\n\n## MNIST, eps 76.5\n\nmnist table\n\n## Fashion-MNIST, eps 25.5\n\nnew fashion\n');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')), { mnist: { v: 'mnist-1' }, 'fashion-mnist': { v: 'fashion-2' } });
});

test('an unreadable JSON beside the report is refused, naming it, and nothing is written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-sections-'));
  const out = join(dir, 'r.md');
  writeFileSync(out, '# old\n\n## MNIST\n\nkept\n');
  writeFileSync(join(dir, 'r.json'), '{"mnist": ');
  assert.throws(() => writeSectionedReport(out, '# new', [{ key: 'fashion-mnist', markdown: '## Fashion-MNIST\n\nx', json: {} }], TITLES), /r\.json: not readable JSON .*move it away/);
  assert.equal(readFileSync(out, 'utf8'), '# old\n\n## MNIST\n\nkept\n');
  assert.equal(readFileSync(join(dir, 'r.json'), 'utf8'), '{"mnist": ');
  assert.ok(!existsSync(join(dir, 'r.json.tmp')));
});
