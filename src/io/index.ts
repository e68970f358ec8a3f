/** Reading and writing tensors: safetensors files and atomic file replacement. */
export {
  encodeSafetensors,
  decodeSafetensors,
  saveSafetensors,
  saveSafetensorsSync,
  loadSafetensors,
  loadSafetensorsSync,
  readSafetensorsHeader,
  SafetensorsError,
  MAX_HEADER_BYTES,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type SafetensorsContents,
  type DecodeOptions,
  type NamedTensors,
} from './safetensors.js';
export { writeFileAtomic, writeFileAtomicSync, makeDirectorySync, removeStaleTemporaries, type AtomicData, type AtomicDataSync, type AtomicWriteOptions } from './atomic.js';
export {
  saveCheckpoint, saveCheckpointSync, loadCheckpointSync, encodeCheckpoint, decodeCheckpoint, disposeCheckpoint, CheckpointError,
  CHECKPOINT_FORMAT, type Checkpoint, type Json,
} from './checkpoint.js';
export { readRegularFileSync, readRegularFile, FileReadError, defaultMaxFileBytes, type ReadRegularFileOptions } from './read-file.js';
export { encodePng, tensorToPng } from './png.js';
export { checkZipArchive } from './zip-check.js';
export * as tfjs from './tfjs/index.js';
export { readNumber, describeNumber, InvalidNumberError, type NumberSpec } from './numbers.js';
