// native/torch-config.cjs: which libtorch the addon is built against, and the
// flags binding.gyp gets for it, decided on fake directory trees (a Debian
// CPU layout, a pip CUDA torch, missing directories) and on this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

interface PythonTorch { dir: string; version: string; cuda: string | null; cxx11abi: boolean }
interface Resolved {
  layout: 'debian' | 'directory' | 'python';
  root: string | null;
  includeDirs: string[];
  libDirs: string[];
  rpath: string[];
  libraries: string[];
  noAsNeeded: string[];
  defines: string[];
  abi: '0' | '1';
  cuda: boolean;
  cudaVersion: string | null;
  torchVersion: string | null;
  gloo: boolean;
  nccl: { enabled: boolean; why: string };
  openmp: boolean;
}
interface ResolveOptions {
  env?: Record<string, string | undefined>;
  sysroot?: string;
  nm?: (file: string) => string | null;
  python?: (exe: string) => PythonTorch;
}
const require = createRequire(import.meta.url);
const config = require('../../native/torch-config.cjs') as {
  resolveTorch(o?: ResolveOptions): Resolved;
  flags(kind: string, t?: Resolved): string[];
};
const SCRIPT = join(dirname(new URL(import.meta.url).pathname), '..', '..', 'native', 'torch-config.cjs');

function tree(t: { after: (fn: () => void) => void }, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'advml-torch-config-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [rel, body] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(rel.endsWith('/') ? p : dirname(p), { recursive: true });
    if (!rel.endsWith('/')) writeFileSync(p, body);
  }
  return root;
}

const OPENMP_CONFIG = '#define AT_PARALLEL_OPENMP 1\n#define AT_PARALLEL_NATIVE 0\n';
const cxx11Symbols = () => '0000 T _ZN3c106detail14torchCheckFailEPKcS2_jRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE\n';
const noPython = (): PythonTorch => { throw new Error('python must not be asked'); };
const all = (t: Resolved) => ({ include: config.flags('include', t).join(' '), cflags: config.flags('cflags', t).join(' '), libs: config.flags('libs', t).join(' ') });

function debianTree(t: { after: (fn: () => void) => void }): string {
  return tree(t, {
    'usr/lib/x86_64-linux-gnu/libc10.so': '', 'usr/lib/x86_64-linux-gnu/libtorch.so': '', 'usr/lib/x86_64-linux-gnu/libtorch_cpu.so': '',
    'usr/include/ATen/ATen.h': '', 'usr/include/ATen/Config.h': OPENMP_CONFIG, 'usr/include/gloo/algorithm.h': '',
  });
}

/** A pip install of a CUDA torch: site-packages/torch with the nvidia-* wheels beside it. */
function pipCudaTree(t: { after: (fn: () => void) => void }, extra: Record<string, string> = {}): { sysroot: string; site: string; torch: string } {
  const sysroot = tree(t, {
    'site-packages/torch/lib/libc10.so': '', 'site-packages/torch/lib/libc10_cuda.so': '', 'site-packages/torch/lib/libtorch.so': '',
    'site-packages/torch/lib/libtorch_cpu.so': '', 'site-packages/torch/lib/libtorch_cuda.so': '', 'site-packages/torch/lib/libtorch_python.so': '',
    'site-packages/torch/include/ATen/ATen.h': '', 'site-packages/torch/include/ATen/Config.h': OPENMP_CONFIG,
    'site-packages/torch/share/cmake/Torch/TorchConfig.cmake': 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")\n',
    'site-packages/nvidia/cuda_runtime/include/cuda_runtime_api.h': '', 'site-packages/nvidia/nccl/include/nccl.h': '',
    'site-packages/nvidia/cublas/include/cublas_v2.h': '', 'site-packages/nvidia/nccl/lib/libnccl.so.2': '',
    ...extra,
  });
  const site = join(sysroot, 'site-packages');
  return { sysroot, site, torch: join(site, 'torch') };
}

test('Debian CPU layout: the flags the build has always had', (t) => {
  const s = debianTree(t);
  const r = config.resolveTorch({ env: {}, sysroot: s, nm: cxx11Symbols, python: noPython });
  assert.equal(r.layout, 'debian');
  assert.equal(r.cuda, false);
  assert.deepEqual(r.noAsNeeded, []);
  assert.deepEqual(all(r), {
    include: `${s}/usr/include ${s}/usr/include/torch/csrc/api/include`,
    cflags: '-D_GLIBCXX_USE_CXX11_ABI=1 -DUSE_C10D_GLOO -fopenmp',
    libs: `-L${s}/usr/lib/x86_64-linux-gnu -ltorch -ltorch_cpu -lc10 -fopenmp`,
  });
  assert.deepEqual(r.nccl, { enabled: false, why: 'libtorch has no CUDA' });
  // The ABI follows libc10's symbols; without nm's answer it is the new ABI.
  assert.equal(config.resolveTorch({ env: {}, sysroot: s, nm: () => '0000 T _ZN3c105ErrorC1ESsSs\n' }).abi, '0');
  assert.equal(config.resolveTorch({ env: {}, sysroot: s, nm: () => null }).abi, '1');
});

test('this machine without LIBTORCH: Debian 12 libtorch-dev gives the flags recorded before the resolver was factored out', (t) => {
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libc10.so.1.13') || !existsSync('/usr/include/gloo')) {
    t.skip('not the Debian 12 set-up (libtorch-dev 1.13 and libgloo-dev) the recorded flags come from');
    return;
  }
  const env = { ...process.env };
  delete env.LIBTORCH;
  assert.deepEqual(all(config.resolveTorch({ env })), {
    include: '/usr/include /usr/include/torch/csrc/api/include',
    cflags: '-D_GLIBCXX_USE_CXX11_ABI=1 -DUSE_C10D_GLOO -fopenmp',
    libs: '-L/usr/lib/x86_64-linux-gnu -ltorch -ltorch_cpu -lc10 -fopenmp',
  });
});

test('pip CUDA torch through LIBTORCH=python: CUDA libraries kept linked, ADVML_CUDA, the ABI Python reports, no c10d without gloo headers', (t) => {
  const { sysroot, torch } = pipCudaTree(t);
  const asked: string[] = [];
  const python = (exe: string): PythonTorch => { asked.push(exe); return { dir: torch, version: '2.5.1+cu124', cuda: '12.4', cxx11abi: false }; };
  const r = config.resolveTorch({ env: { LIBTORCH: 'python' }, sysroot, nm: cxx11Symbols, python });
  assert.deepEqual(asked, ['python3']);
  assert.equal(r.layout, 'python');
  assert.equal(r.root, torch);
  assert.equal(r.cuda, true);
  assert.equal(r.cudaVersion, '12.4');
  assert.equal(r.torchVersion, '2.5.1+cu124');
  assert.equal(r.abi, '0', 'Python\'s answer wins over the symbols');
  assert.deepEqual(all(r), {
    include: `${torch}/include ${torch}/include/torch/csrc/api/include`,
    cflags: '-D_GLIBCXX_USE_CXX11_ABI=0 -DADVML_CUDA=1 -fopenmp',
    libs: `-L${torch}/lib -Wl,-rpath,${torch}/lib -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -ltorch -ltorch_cpu -lc10 -fopenmp`,
  });
  assert.equal(r.gloo, false);
  assert.equal(r.nccl.enabled, false);
  assert.match(r.nccl.why, new RegExp(`no gloo headers in ${torch}/include`));

  // A named interpreter is the one asked; what it says of the ABI wins over TorchConfig.cmake (which says 0 here).
  const named = config.resolveTorch({ env: { LIBTORCH: 'python:/opt/venv/bin/python' }, sysroot, nm: cxx11Symbols, python: (exe) => ({ ...python(exe), cxx11abi: true }) });
  assert.equal(asked.at(-1), '/opt/venv/bin/python');
  assert.equal(named.abi, '1');
});

test('the same tree as LIBTORCH=/path: the ABI comes from TorchConfig.cmake', (t) => {
  const { sysroot, torch } = pipCudaTree(t);
  const r = config.resolveTorch({ env: { LIBTORCH: torch }, sysroot, nm: cxx11Symbols, python: noPython });
  assert.equal(r.layout, 'directory');
  assert.equal(r.abi, '0');
  assert.equal(r.cudaVersion, null);
  assert.deepEqual(r.noAsNeeded, ['torch_cuda', 'c10_cuda']);
  assert.ok(r.defines.includes('ADVML_CUDA=1'));
});

test('NCCL: on with gloo headers, nccl.h and the CUDA runtime headers (their directories added), off with the reason otherwise', (t) => {
  const { sysroot, site, torch } = pipCudaTree(t, { 'site-packages/torch/include/gloo/algorithm.h': '' });
  const r = config.resolveTorch({ env: { LIBTORCH: torch }, sysroot, nm: cxx11Symbols });
  assert.equal(r.nccl.enabled, true, r.nccl.why);
  assert.ok(r.defines.includes('USE_C10D_GLOO') && r.defines.includes('ADVML_CUDA=1'));
  assert.deepEqual(r.includeDirs, [
    `${torch}/include`, `${torch}/include/torch/csrc/api/include`,
    `${site}/nvidia/cublas/include`, `${site}/nvidia/cuda_runtime/include`, `${site}/nvidia/nccl/include`,
  ]);

  // CUDA_HOME's headers are taken too, before the wheels'.
  const cudaHome = tree(t, { 'include/cuda_runtime_api.h': '' });
  const withHome = config.resolveTorch({ env: { LIBTORCH: torch, CUDA_HOME: cudaHome }, sysroot, nm: cxx11Symbols });
  assert.equal(withHome.includeDirs[2], join(cudaHome, 'include'));

  // nccl.h without the CUDA runtime's headers would not compile: NCCL stays off and nothing is added.
  rmSync(join(site, 'nvidia', 'cuda_runtime'), { recursive: true });
  const noRuntime = config.resolveTorch({ env: { LIBTORCH: torch }, sysroot, nm: cxx11Symbols });
  assert.equal(noRuntime.nccl.enabled, false);
  assert.match(noRuntime.nccl.why, /no cuda_runtime_api\.h/);
  assert.deepEqual(noRuntime.includeDirs, [`${torch}/include`, `${torch}/include/torch/csrc/api/include`]);

  rmSync(join(site, 'nvidia'), { recursive: true });
  const noNccl = config.resolveTorch({ env: { LIBTORCH: torch }, sysroot, nm: cxx11Symbols });
  assert.equal(noNccl.nccl.enabled, false);
  assert.match(noNccl.nccl.why, /no nccl\.h in /);
});

test('missing or incomplete directories: the error names the path and the variable', (t) => {
  const s = tree(t, { 'empty/': '', 'nolib/include/ATen/ATen.h': '', 'noheaders/lib/libc10.so': '' });
  const missing = join(s, 'no-such-libtorch');
  assert.throws(() => config.resolveTorch({ env: { LIBTORCH: missing }, sysroot: s }),
    (e: Error) => e.message === `LIBTORCH=${missing}: ${missing} does not exist; point LIBTORCH at a libtorch or torch package directory, or set LIBTORCH=python`);
  assert.throws(() => config.resolveTorch({ env: { LIBTORCH: join(s, 'nolib') }, sysroot: s }),
    new RegExp(`^Error: LIBTORCH=${join(s, 'nolib')}: no lib/libc10.so in ${join(s, 'nolib')}`));
  assert.throws(() => config.resolveTorch({ env: { LIBTORCH: join(s, 'noheaders') }, sysroot: s }), /no include\/ATen\/ATen\.h in .*noheaders: libtorch's headers are missing/);
  // No Debian libtorch under the sysroot: the paths looked in and both ways out.
  assert.throws(() => config.resolveTorch({ env: {}, sysroot: join(s, 'empty') }),
    (e: Error) => e.message.startsWith(`libtorch not found (no libc10.so in ${join(s, 'empty')}/usr/lib/x86_64-linux-gnu,`) && /set LIBTORCH=\/path or LIBTORCH=python$/.test(e.message));
  // Python's torch gone, or a path that Python names but that is not there.
  assert.throws(() => config.resolveTorch({ env: { LIBTORCH: 'python:/x/python' }, sysroot: s, python: () => { throw new Error('could not import torch with /x/python: ModuleNotFoundError: No module named \'torch\''); } }),
    /^Error: LIBTORCH=python:\/x\/python: could not import torch with \/x\/python: ModuleNotFoundError/);
  assert.throws(() => config.resolveTorch({ env: { LIBTORCH: 'python' }, sysroot: s, python: () => ({ dir: missing, version: '2.5.1', cuda: null, cxx11abi: true }) }),
    new RegExp(`LIBTORCH=python: ${missing} does not exist`));
});

test('a torch that reports CUDA without its CUDA libraries is refused', (t) => {
  const { sysroot, torch } = pipCudaTree(t);
  rmSync(join(torch, 'lib', 'libtorch_cuda.so'));
  rmSync(join(torch, 'lib', 'libc10_cuda.so'));
  assert.throws(() => config.resolveTorch({ env: { LIBTORCH: 'python' }, sysroot, python: () => ({ dir: torch, version: '2.5.1+cu124', cuda: '12.4', cxx11abi: false }) }),
    /torch 2\.5\.1\+cu124 reports CUDA 12\.4 but .*\/lib has no libtorch_cuda\.so or libc10_cuda\.so/);
});

test('the command line: describe prints the decision, errors go to stderr with status 1', (t) => {
  const s = tree(t, { 'x/': '' });
  const missing = join(s, 'gone');
  const bad = spawnSync(process.execPath, [SCRIPT, 'libs'], { env: { ...process.env, LIBTORCH: missing }, encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, new RegExp(`^torch-config: LIBTORCH=${missing}: ${missing} does not exist`));
  const unknown = spawnSync(process.execPath, [SCRIPT, 'bogus'], { encoding: 'utf8' });
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown query bogus: expected include, cflags, libs or describe/);
  const env = { ...process.env };
  delete env.LIBTORCH;
  const described = spawnSync(process.execPath, [SCRIPT, 'describe'], { env, encoding: 'utf8' });
  if (described.status !== 0) {
    t.diagnostic(`no libtorch here: ${described.stderr.trim()}`);
    return;
  }
  const d = JSON.parse(described.stdout) as Resolved;
  assert.equal(d.layout, 'debian');
  assert.deepEqual(d, JSON.parse(JSON.stringify(config.resolveTorch({ env }))));
});

test('the Python probe itself, on a Python that has torch (Debian\'s python3-torch here)', (t) => {
  const python = process.env.ADVML_PYTHON ?? '/usr/bin/python3';
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    t.skip(`${python} has no torch`);
    return;
  }
  const r = config.resolveTorch({ env: { LIBTORCH: `python:${python}` } });
  assert.equal(r.layout, 'python');
  assert.match(r.root ?? '', /torch$/);
  assert.match(r.torchVersion ?? '', /^\d+\.\d+/);
  assert.equal(r.cuda, r.cudaVersion !== null);
  assert.deepEqual(r.rpath, r.libDirs);
});
