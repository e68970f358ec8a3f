/** The tensor engine: libtorch behind a TypeScript API. */
export { Tensor, type TensorLike, type NestedArray, type MemoryFormat, type ReduceOptions, describe as describeValue } from './tensor.js';
export { type DType, type AnyTypedArray, isFloating } from './dtype.js';
export { scope, dispose } from './scope.js';
export { grad, noGrad, enableGrad, isGradEnabled, type GradOptions } from './autograd.js';
export * from './ops.js';
export * from './random.js';
export {
  setNumThreads, getNumThreads, manualSeed, globalGeneratorState, setGlobalGeneratorState, memory, emptyCache, stateStamp, cudaAvailable, cudaDeviceCount, cudaHasBf16, buildInfo, defaultThreads, loadedBlas, switchFromEnv,
  type MemoryInfo, type BuildInfo,
} from './runtime.js';
export { type ConcretePrecision, type DeviceKind, type Precision, type PrecisionHardware, PRECISIONS, autocastDtype, checkPrecision, choosePrecision, cpuHasBf16, cpuinfoHasBf16, isPrecision, lossPrecision, resolvePrecision, withPrecision } from './precision.js';
export { ScriptModule } from './script.js';
