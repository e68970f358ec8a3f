/**
 * Loading of the native addon (libtorch behind Node-API). Everything else in
 * the engine reaches libtorch through `native`; nothing outside `src/engine`
 * imports this module.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An opaque reference to a libtorch tensor owned by the addon. */
export interface Handle {
  readonly __tensorHandle: unique symbol;
}

/** An opaque reference to a libtorch random generator. */
export interface GeneratorHandle {
  readonly __generatorHandle: unique symbol;
}

/** Arguments the op table accepts: tensors, scalars, shapes, flags, dtype codes. */
export type NativeArg =
  | Handle
  | GeneratorHandle
  | number
  | boolean
  | string
  | null
  | undefined
  | readonly number[]
  | readonly Handle[]
  | ArrayBufferView;

/** Names the addon exports (native/*.cc register them; a test checks both lists agree). */
export type OpName =
  | 'conv2d' | 'maxPool2d' | 'avgPool2d' | 'adaptiveAvgPool2d' | 'log1p' | 'pad'
  | 'convTranspose2d' | 'reflectionPad2d' | 'replicationPad2d' | 'gelu' | 'hardswish' | 'hardsigmoid'
  | 'abs' | 'add' | 'add_' | 'addcdiv_' | 'addcmul_' | 'all' | 'amax' | 'amin' | 'any' | 'arange' | 'argmax' |
  'argmin' | 'backward' | 'batchNorm' | 'batchNormRelu' | 'bernoulli' | 'buildConfig' | 'cat' | 'ceil' | 'chunk' | 'clamp' |
  'clampInPlace_' | 'clone' | 'contiguous' | 'copyInFormat' | 'copy_' | 'cos' | 'crossEntropy' | 'cudaBf16Supported' | 'cudaDeviceCount' | 'cumsum' |
  'detach' | 'device' | 'dispose' | 'disposedHandle' | 'div' | 'div_' | 'dropout' | 'dtype' | 'elu' | 'empty' |
  'eq' | 'erf' | 'erfinv' | 'exp' | 'expand' | 'eye' | 'fill_' | 'flatten' | 'flip' | 'floor' | 'fromBuffer' | 'full' |
  'gather' | 'ge' | 'generatorState' | 'getGrad' | 'getNumThreads' | 'grad' | 'gradFn' | 'gt' | 'hardtanh' |
  'indexCopy' | 'indexSelect' | 'isContiguous' | 'isDisposed' | 'isGradEnabled' | 'isLeaf' | 'isfinite' | 'isnan' | 'item' |
  'klDiv' | 'le' | 'leakyRelu' | 'lerp_' | 'linear' | 'linspace' | 'log' | 'logSoftmax' | 'logicalAnd' |
  'logicalNot' | 'logicalOr' | 'logsumexp' | 'lt' | 'manualSeed' | 'setAutocast' | 'maskedFill' | 'maskedSelect' | 'matmul' |
  'maximum' | 'mean' | 'memory' | 'emptyCache' | 'stateStamp' | 'minimum' | 'mseLoss' | 'mul' | 'mul_' | 'multinomial' | 'narrow' | 'ne' |
  'neg' | 'newGenerator' | 'nllLoss' | 'norm' | 'normal_' | 'oneHot' | 'ones' | 'onesLike' | 'permute' | 'pow' |
  'rand' | 'randint' | 'randn' | 'randperm' | 'reciprocal' | 'relu' | 'remainder' | 'repeat' | 'requiresGrad' |
  'reshape' | 'round' | 'rsqrt' | 'scatter' | 'select' | 'setData' | 'setGeneratorState' | 'setGrad' |
  'setGradEnabled' | 'setNumThreads' | 'setRequiresGrad' | 'shape' | 'sigmoid' | 'sign' | 'sin' | 'slice' |
  'softmax' | 'softplus' | 'sort' | 'split' | 'sqrt' | 'square' | 'squeeze' | 'stack' | 'std' | 'sub' | 'sum' |
  'tanh' | 'toBuffer' | 'toDevice' | 'toDtype' | 'toString' | 'topk' | 'transpose' | 'uniform_' | 'unsqueeze' |
  'var' | 'where' | 'zero_' | 'zeros' | 'zerosLike'
  | 'jitLoad' | 'jitFree' | 'jitParameters' | 'jitBuffers' | 'jitTrain' | 'jitForward' | 'jitSave' | 'jitMethods' | 'jitFreeze'
  | 'distInit' | 'distDestroy' | 'distAllReduce' | 'distAllReduceAutograd' | 'distBroadcast' | 'distAllGather' | 'distBarrier'
  | 'distReducer' | 'distReducerBuckets' | 'distReducerPrepare' | 'distReducerFinish'
  | 'jpegDecodeCrop';

/** The op table. Each entry throws an Error whose message starts with the op's name. */
export type NativeModule = Record<OpName, (...args: NativeArg[]) => unknown>;

function findAddon(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/engine or dist/engine: the build directory is two levels up.
  const candidates = [
    process.env.ADVML_ADDON,
    join(here, '..', '..', 'build', 'Release', 'advml.node'),
    join(here, '..', '..', '..', 'build', 'Release', 'advml.node'),
  ].filter((p): p is string => typeof p === 'string');
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `advml native addon not found (looked in ${candidates.join(', ')}); ` +
        'build it with `npm run build:native` (scripts/setup.sh installs libtorch and builds it)',
    );
  }
  return found;
}

const require = createRequire(import.meta.url);

// Read by the addon as it loads (native/allocator.cc), so checked before it does.
const cacheMb = process.env.ADVML_CPU_CACHE_MB;
if (cacheMb !== undefined && cacheMb !== '' && !/^[0-9]+$/.test(cacheMb)) {
  throw new Error(`ADVML_CPU_CACHE_MB must be a whole number of MiB (0 turns the caching CPU allocator off), got '${cacheMb}'`);
}

/** The loaded addon. */
export const native = require(findAddon()) as NativeModule;
