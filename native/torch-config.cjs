#!/usr/bin/env node
// Locates the libtorch distribution the addon is built against and prints the
// compiler or linker flags binding.gyp asks for. LIBTORCH=/path selects a
// pytorch.org libtorch or the directory of a Python `torch` install; without it
// Debian's libtorch-dev (headers in /usr/include, libraries in the multiarch dir).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function locate() {
  const root = process.env.LIBTORCH;
  if (root) {
    const lib = path.join(root, 'lib');
    if (!fs.existsSync(path.join(lib, 'libc10.so'))) {
      throw new Error(`LIBTORCH=${root}: no lib/libc10.so there; point it at a libtorch or torch package directory`);
    }
    return { include: path.join(root, 'include'), lib, rpath: true };
  }
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib']
    .find((d) => fs.existsSync(path.join(d, 'libc10.so')));
  if (!multiarch || !fs.existsSync('/usr/include/ATen/ATen.h')) {
    throw new Error('libtorch not found: install Debian libtorch-dev (scripts/setup.sh does) or set LIBTORCH=/path');
  }
  return { include: '/usr/include', lib: multiarch, rpath: false };
}

// The C++ ABI must match the one libtorch was compiled with. TorchConfig.cmake
// states it for pytorch.org builds; otherwise the exported symbols tell.
function cxx11Abi(t) {
  const cmake = path.join(t.lib, '..', 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  if (fs.existsSync(cmake)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(fs.readFileSync(cmake, 'utf8'));
    if (m) return m[1];
  }
  try {
    const syms = execFileSync('nm', ['-D', '--defined-only', path.join(t.lib, 'libc10.so')], {
      encoding: 'utf8', maxBuffer: 256 << 20,
    });
    return /__cxx11/.test(syms) ? '1' : '0';
  } catch {
    return '1';
  }
}

const has = (t, name) => fs.existsSync(path.join(t.lib, `lib${name}.so`));

// Whether libtorch parallelises with OpenMP (ATen/Config.h says which backend it was built with).
function openmp(t) {
  const config = path.join(t.include, 'ATen', 'Config.h');
  return fs.existsSync(config) && /#define AT_PARALLEL_OPENMP 1/.test(fs.readFileSync(config, 'utf8'));
}

function flags(kind) {
  const t = locate();
  switch (kind) {
    case 'include':
      return [t.include, path.join(t.include, 'torch', 'csrc', 'api', 'include')];
    case 'cflags': {
      const out = [`-D_GLIBCXX_USE_CXX11_ABI=${cxx11Abi(t)}`];
      if (has(t, 'torch_cuda') || has(t, 'c10_cuda')) out.push('-DADVML_CUDA=1');
      if (fs.existsSync(path.join(t.include, 'gloo'))) out.push('-DUSE_C10D_GLOO');
      // at::parallel_for is inlined from the headers: under an OpenMP build of
      // libtorch it runs in parallel only where the addon is compiled with OpenMP too.
      if (openmp(t)) out.push('-fopenmp');
      return out;
    }
    case 'libs': {
      const out = [`-L${t.lib}`];
      if (t.rpath) out.push(`-Wl,-rpath,${t.lib}`);
      // CUDA kernels register themselves at load: keep those libraries linked.
      const cuda = ['torch_cuda', 'c10_cuda'].filter((n) => has(t, n));
      if (cuda.length) out.push('-Wl,--no-as-needed', ...cuda.map((n) => `-l${n}`), '-Wl,--as-needed');
      out.push('-ltorch', '-ltorch_cpu', '-lc10');
      if (openmp(t)) out.push('-fopenmp');
      return out;
    }
    default:
      throw new Error(`unknown query ${kind}: expected include, cflags or libs`);
  }
}

if (require.main === module) {
  try {
    process.stdout.write(flags(process.argv[2]).join(' ') + '\n');
  } catch (e) {
    process.stderr.write(`torch-config: ${e.message}\n`);
    process.exit(1);
  }
}
module.exports = { flags };
