#!/usr/bin/env node
// Locates the libtorch distribution the addon is built against and prints the
// compiler or linker flags binding.gyp asks for (docs/gpu.md):
//   LIBTORCH unset          Debian's libtorch-dev (headers in /usr/include, libraries in the multiarch dir)
//   LIBTORCH=/path          a pytorch.org libtorch, or the directory of a Python `torch` install
//   LIBTORCH=python         the `torch` that `python3` on PATH imports (a pip CUDA build, say)
//   LIBTORCH=python:/x/bin/python   the `torch` of that interpreter
// A libtorch with CUDA (lib/libtorch_cuda.so or lib/libc10_cuda.so) gets its CUDA
// libraries linked and ADVML_CUDA defined. `node native/torch-config.cjs describe`
// prints the whole decision as JSON.
//
// resolveTorch() is the decision, a function of the environment and of the
// files it finds (test/native/torch-config.test.ts runs it on fake trees);
// flags() turns its answer into the flags of each query.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

// Asks a Python interpreter where its torch lives and how it was built.
const PYTHON_PROBE = [
  'import json, os, torch',
  "print(json.dumps({'dir': os.path.dirname(torch.__file__), 'version': torch.__version__,",
  "  'cuda': torch.version.cuda, 'cxx11abi': bool(torch.compiled_with_cxx11_abi())}))",
].join('\n');

function probePython(exe) {
  try {
    const out = execFileSync(exe, ['-c', PYTHON_PROBE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    const err = e && e.stderr ? String(e.stderr).trim().split('\n').pop() : (e && e.message) || String(e);
    throw new Error(`could not import torch with ${exe}: ${err}`);
  }
}

function dynamicSymbols(file) {
  try {
    return execFileSync('nm', ['-D', '--defined-only', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  } catch {
    return null;
  }
}

const exists = (p) => fs.existsSync(p);

// The C++ ABI must match the one libtorch was compiled with. Python's torch
// says so itself; TorchConfig.cmake states it for pytorch.org builds (and pip
// wheels); otherwise the exported symbols tell.
function cxx11Abi(lib, probe, nm) {
  if (probe && typeof probe.cxx11abi === 'boolean') return probe.cxx11abi ? '1' : '0';
  const cmake = path.join(lib, '..', 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  if (exists(cmake)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(fs.readFileSync(cmake, 'utf8'));
    if (m) return m[1];
  }
  const syms = nm(path.join(lib, 'libc10.so'));
  if (syms === null) return '1';
  return /__cxx11/.test(syms) ? '1' : '0';
}

// Whether libtorch parallelises with OpenMP (ATen/Config.h says which backend it was built with).
function usesOpenmp(include) {
  const config = path.join(include, 'ATen', 'Config.h');
  return exists(config) && /#define AT_PARALLEL_OPENMP 1/.test(fs.readFileSync(config, 'utf8'));
}

// libtorch's CUDA libraries, in link order (torch 1.10-1.12 split libtorch_cuda in two).
const CUDA_LIBS = ['torch_cuda', 'torch_cuda_cu', 'torch_cuda_cpp', 'c10_cuda'];

// NCCL (native/distributed.cc) compiles where c10d does (gloo headers) with a
// CUDA libtorch and nccl.h on the include path; ProcessGroupNCCL.hpp then
// includes the CUDA runtime's headers. Those come from CUDA_HOME (or
// CUDA_PATH, /usr/local/cuda) or, for a pip torch, from the nvidia-* wheels
// beside it in site-packages. Returns the include directories to add and why
// NCCL is on or off.
function ncclSetup(root, gloo, env, sysroot) {
  if (!gloo) return { dirs: [], enabled: false, why: `no gloo headers in ${path.join(root, 'include')}: c10d (Gloo and NCCL) is compiled out` };
  const candidates = [env.CUDA_HOME, env.CUDA_PATH].filter(Boolean).map((d) => path.join(d, 'include'));
  candidates.push(path.join(sysroot, 'usr', 'local', 'cuda', 'include'));
  const nvidia = path.join(path.dirname(root), 'nvidia');
  if (exists(nvidia)) {
    for (const name of fs.readdirSync(nvidia).sort()) candidates.push(path.join(nvidia, name, 'include'));
  }
  const dirs = [...new Set(candidates)].filter((d) => exists(d));
  const system = path.join(sysroot, 'usr', 'include');
  const nccl = [...dirs, system].find((d) => exists(path.join(d, 'nccl.h')));
  const runtime = dirs.find((d) => exists(path.join(d, 'cuda_runtime_api.h')));
  if (!nccl) return { dirs: [], enabled: false, why: `no nccl.h in ${[...dirs, system].join(', ')}` };
  if (!runtime) {
    return { dirs: [], enabled: false, why: `nccl.h in ${nccl} but no cuda_runtime_api.h (set CUDA_HOME to a CUDA toolkit, or pip install nvidia-cuda-runtime)` };
  }
  return { dirs: dirs.filter((d) => d !== system), enabled: true, why: `nccl.h in ${nccl}, CUDA runtime headers in ${runtime}` };
}

/**
 * Decides what the addon is built against. Pure but for the files it reads:
 * `sysroot` prefixes the Debian paths, `nm(file)` returns a library's dynamic
 * symbols (or null), `python(exe)` returns { dir, version, cuda, cxx11abi }
 * for that interpreter's torch or throws.
 * Returns { layout, root, includeDirs, libDirs, rpath, libraries, noAsNeeded,
 * defines, abi, cuda, cudaVersion, torchVersion, gloo, nccl, openmp }.
 */
function resolveTorch({ env = process.env, sysroot = '/', nm = dynamicSymbols, python = probePython } = {}) {
  const spec = env.LIBTORCH;
  let root = null;
  let probe = null;
  let layout = 'debian';
  if (spec === 'python' || (spec && spec.startsWith('python:'))) {
    const exe = spec === 'python' ? 'python3' : spec.slice('python:'.length);
    try {
      probe = python(exe);
    } catch (e) {
      throw new Error(`LIBTORCH=${spec}: ${e.message}; install torch for it or point LIBTORCH at a libtorch directory`);
    }
    root = probe.dir;
    layout = 'python';
  } else if (spec) {
    root = spec;
    layout = 'directory';
  }

  let include;
  let lib;
  if (root !== null) {
    if (!exists(root)) throw new Error(`LIBTORCH=${spec}: ${root} does not exist; point LIBTORCH at a libtorch or torch package directory, or set LIBTORCH=python`);
    lib = path.join(root, 'lib');
    include = path.join(root, 'include');
    if (!exists(path.join(lib, 'libc10.so'))) {
      throw new Error(`LIBTORCH=${spec}: no lib/libc10.so in ${root}; point it at a libtorch or torch package directory`);
    }
    if (!exists(path.join(include, 'ATen', 'ATen.h'))) {
      throw new Error(`LIBTORCH=${spec}: no include/ATen/ATen.h in ${root}: libtorch's headers are missing`);
    }
  } else {
    const dirs = ['usr/lib/x86_64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'usr/lib'].map((d) => path.join(sysroot, d));
    lib = dirs.find((d) => exists(path.join(d, 'libc10.so')));
    include = path.join(sysroot, 'usr', 'include');
    if (!lib || !exists(path.join(include, 'ATen', 'ATen.h'))) {
      throw new Error(`libtorch not found (no libc10.so in ${dirs.join(', ')} or no ${path.join(include, 'ATen', 'ATen.h')}): ` +
        'install Debian libtorch-dev (scripts/setup.sh does) or set LIBTORCH=/path or LIBTORCH=python');
    }
  }

  const cudaLibs = CUDA_LIBS.filter((n) => exists(path.join(lib, `lib${n}.so`)));
  const cuda = cudaLibs.length > 0;
  if (probe && probe.cuda && !cuda) {
    throw new Error(`LIBTORCH=${spec}: torch ${probe.version} reports CUDA ${probe.cuda} but ${lib} has no libtorch_cuda.so or libc10_cuda.so`);
  }
  const abi = cxx11Abi(lib, probe, nm);
  const gloo = exists(path.join(include, 'gloo'));
  const openmp = usesOpenmp(include);
  const nccl = cuda ? ncclSetup(root ?? path.dirname(lib), gloo, env, sysroot) : { dirs: [], enabled: false, why: 'libtorch has no CUDA' };

  const defines = [`_GLIBCXX_USE_CXX11_ABI=${abi}`];
  if (cuda) defines.push('ADVML_CUDA=1');
  if (gloo) defines.push('USE_C10D_GLOO');
  return {
    layout,
    root: root ?? null,
    includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include'), ...nccl.dirs],
    libDirs: [lib],
    // A libtorch outside the system's library path is found at run time through the addon's RUNPATH.
    rpath: root !== null ? [lib] : [],
    libraries: [...cudaLibs, 'torch', 'torch_cpu', 'c10'],
    // CUDA kernels register themselves at load: keep those libraries linked even though no symbol of theirs is used.
    noAsNeeded: cudaLibs,
    defines,
    abi,
    cuda,
    cudaVersion: probe ? probe.cuda ?? null : null,
    torchVersion: probe ? probe.version : null,
    gloo,
    nccl: { enabled: nccl.enabled, why: nccl.why },
    // at::parallel_for is inlined from the headers: under an OpenMP build of
    // libtorch it runs in parallel only where the addon is compiled with OpenMP too.
    openmp,
  };
}

function flags(kind, t = resolveTorch()) {
  switch (kind) {
    case 'include':
      return t.includeDirs;
    case 'cflags': {
      const out = t.defines.map((d) => `-D${d}`);
      if (t.openmp) out.push('-fopenmp');
      return out;
    }
    case 'libs': {
      const out = t.libDirs.map((d) => `-L${d}`);
      for (const d of t.rpath) out.push(`-Wl,-rpath,${d}`);
      const whole = t.libraries.filter((n) => t.noAsNeeded.includes(n));
      if (whole.length) out.push('-Wl,--no-as-needed', ...whole.map((n) => `-l${n}`), '-Wl,--as-needed');
      out.push(...t.libraries.filter((n) => !t.noAsNeeded.includes(n)).map((n) => `-l${n}`));
      if (t.openmp) out.push('-fopenmp');
      return out;
    }
    case 'describe':
      return [JSON.stringify(t, null, 2)];
    default:
      throw new Error(`unknown query ${kind}: expected include, cflags, libs or describe`);
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
module.exports = { flags, resolveTorch, PYTHON_PROBE };
