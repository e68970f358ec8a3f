/**
 * Two "hosts": network namespaces made by this test, joined by a veth pair
 * with their own addresses, one advml launch each (--nnodes 2), training a
 * few data-parallel steps across them. Skipped only where namespaces cannot
 * be made (not root, no iproute2).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const id = `advml${process.pid % 100000}`;
const hosts = [
  { ns: `${id}a`, dev: `${id}va`, addr: '10.213.77.1' },
  { ns: `${id}b`, dev: `${id}vb`, addr: '10.213.77.2' },
];

const ip = (...args: string[]): { ok: boolean; err: string } => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
};

function makeHosts(): string | null {
  const probe = ip('netns', 'add', hosts[0]!.ns);
  if (!probe.ok) return `network namespaces cannot be made here: ${probe.err.trim()}`;
  const steps: string[][] = [
    ['netns', 'add', hosts[1]!.ns],
    ['link', 'add', hosts[0]!.dev, 'type', 'veth', 'peer', 'name', hosts[1]!.dev],
    ...hosts.flatMap((h) => [
      ['link', 'set', h.dev, 'netns', h.ns],
      ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.dev],
      ['-n', h.ns, 'link', 'set', h.dev, 'up'],
      ['-n', h.ns, 'link', 'set', 'lo', 'up'],
    ]),
  ];
  for (const s of steps) {
    const r = ip(...s);
    if (!r.ok) throw new Error(`ip ${s.join(' ')}: ${r.err}`);
  }
  return null;
}

const skip = makeHosts();
after(() => {
  for (const h of hosts) ip('netns', 'del', h.ns);
});

test('two hosts in their own network namespaces train data-parallel steps together', { skip: skip ?? false, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-netns-'));
  const port = String(29_000 + (process.pid % 1000));
  const runs = hosts.map((h, rank) => {
    const args = [
      'netns', 'exec', h.ns, process.execPath, main, 'launch', '--nnodes', '2', '--node-rank', String(rank), '--nproc-per-node', '1',
      '--master-addr', hosts[0]!.addr, '--master-port', port, '--',
      'train', '--out', join(dir, `node${rank}`), '--limit', '512', '--batch', '32', '--k', '16', '--steps', '6', '--eval-images', '32', '--json',
    ];
    const child = spawn('ip', args, { env: { ...process.env, GLOO_SOCKET_IFNAME: h.dev, ADVML_DIST_TIMEOUT_MS: '60000' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    return new Promise<{ code: number | null; output: string }>((resolve) => child.on('close', (code) => resolve({ code, output })));
  });
  const [a, b] = await Promise.all(runs);
  assert.equal(a!.code, 0, a!.output);
  assert.equal(b!.code, 0, b!.output);
  assert.match(a!.output, /trained 6 steps/);
  const c = loadCheckpointSync(join(dir, 'node0', 'checkpoint.safetensors'));
  assert.equal(c.step, 6);
  assert.deepEqual(Object.keys(c.rng ?? {}).filter((k) => k.startsWith('eps.')).sort(), ['eps.0', 'eps.1']);
  disposeCheckpoint(c);
});
