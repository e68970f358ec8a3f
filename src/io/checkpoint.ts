/**
 * Checkpoints: one safetensors file holding everything needed to rebuild a
 * model and resume training — weights ("model.*"), optimizer state
 * ("optimizer.*"), random generator states ("rng.*") — and, in the metadata,
 * a JSON record (architecture and options, input range, class names, step,
 * epoch, training config, optimizer kind and hyper-parameters), and a SHA-256
 * of everything else the file holds: every metadata entry (the record
 * included) and every tensor's name, dtype, shape and bytes.
 *
 * Writes are atomic (temporary file, fsync, rename): a process killed while
 * writing leaves the previous checkpoint intact. A truncated or tampered file
 * (tensors or record) gives an error naming the file, never a silently wrong
 * model. Files of the first format (checksum of the tensors only) still load.
 */
import { createHash } from 'node:crypto';
import { type Tensor, tensor } from '../engine/index.js';
import type { OptimizerState } from '../optim/index.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
import { readRegularFileSync } from './read-file.js';

export const CHECKPOINT_FORMAT = 'advml-checkpoint-2';

/** The first format: its record held a checksum of the tensors only. Read, never written. */
const LEGACY_FORMAT = 'advml-checkpoint-1';

/** The metadata key of the checksum (the record is under 'advml'). */
const CHECKSUM_KEY = 'advml.sha256';

/** A file that is readable safetensors but not a valid checkpoint. */
export class CheckpointError extends Error {
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super(`checkpoint ${source}: ${problem}`);
    this.name = 'CheckpointError';
  }
}

/** JSON-serialisable values in the checkpoint's record. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** What a checkpoint holds. */
export interface Checkpoint {
  /** How to rebuild the model (see src/models/registry.ts): architecture name, options, classifier spec. */
  model: { [key: string]: Json };
  /** Parameters and buffers by PyTorch-style name. */
  weights: Map<string, Tensor>;
  optimizer?: OptimizerState;
  /** Generator states by name (Generator.getState()). */
  rng?: Record<string, Uint8Array>;
  step?: number;
  epoch?: number;
  /** The run's configuration, for resuming and for reports. */
  config?: { [key: string]: Json };
}

interface Record_ {
  format: string;
  model: { [key: string]: Json };
  step: number;
  epoch: number;
  config: { [key: string]: Json };
  optimizer: { kind: string; step: number; lr: number } | null;
  rng: string[];
  /** advml-checkpoint-1 only: the checksum of the tensors. */
  sha256?: string;
}

/**
 * SHA-256 of the metadata entries other than the checksum (as the exact
 * strings stored) and of the tensors; `metadata` null gives the tensors' alone
 * (the first format's checksum).
 */
function digest(tensors: Map<string, Tensor>, metadata: Record<string, string> | null): string {
  const h = createHash('sha256');
  if (metadata) {
    for (const key of Object.keys(metadata).filter((k) => k !== CHECKSUM_KEY).sort()) {
      h.update(`metadata\0${key}\0${Buffer.byteLength(metadata[key] as string)}\0`);
      h.update(metadata[key] as string);
    }
  }
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name) as Tensor;
    h.update(`${name}\0${t.dtype}\0${t.shape.join(',')}\0`);
    h.update(t.rawBytes());
  }
  return h.digest('hex');
}

function collect(c: Checkpoint): { tensors: Map<string, Tensor>; owned: Tensor[] } {
  const tensors = new Map<string, Tensor>();
  const owned: Tensor[] = [];
  for (const [k, v] of c.weights) tensors.set(`model.${k}`, v);
  if (c.optimizer) for (const [k, v] of c.optimizer.tensors) tensors.set(`optimizer.${k}`, v);
  for (const [k, bytes] of Object.entries(c.rng ?? {})) {
    const t = tensor(bytes, { dtype: 'uint8' });
    owned.push(t);
    tensors.set(`rng.${k}`, t);
  }
  return { tensors, owned };
}

/** The checkpoint as file bytes. */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const { tensors, owned } = collect(c);
  try {
    const record: Record_ = {
      format: CHECKPOINT_FORMAT,
      model: c.model,
      step: c.step ?? 0,
      epoch: c.epoch ?? 0,
      config: c.config ?? {},
      optimizer: c.optimizer ? { kind: c.optimizer.kind, step: c.optimizer.step, lr: c.optimizer.lr } : null,
      rng: Object.keys(c.rng ?? {}),
    };
    const metadata = { advml: JSON.stringify(record) };
    return encodeSafetensors(tensors, { ...metadata, [CHECKSUM_KEY]: digest(tensors, metadata) });
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** Writes a checkpoint atomically. */
export async function saveCheckpoint(path: string, c: Checkpoint): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(c));
}

export function saveCheckpointSync(path: string, c: Checkpoint): void {
  writeFileAtomicSync(path, encodeCheckpoint(c));
}

/** Reads and verifies a checkpoint; the tensors returned are the caller's to dispose. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): Checkpoint {
  const fail = (why: string): never => {
    throw new CheckpointError(source, why);
  };
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  try {
    let record: Record_;
    try {
      record = JSON.parse(metadata.advml ?? 'null') as Record_;
    } catch {
      return fail('its advml record is not valid JSON');
    }
    if (record?.format === LEGACY_FORMAT) {
      if (digest(tensors, null) !== record.sha256) fail('the tensors do not match the checksum recorded when it was written (corrupt or tampered)');
    } else if (record?.format === CHECKPOINT_FORMAT) {
      const recorded = metadata[CHECKSUM_KEY];
      if (recorded === undefined) fail(`no '${CHECKSUM_KEY}' checksum in the metadata`);
      if (digest(tensors, metadata) !== recorded) {
        fail('its record or tensors do not match the checksum recorded when it was written (corrupt or edited); refusing to use it');
      }
    } else {
      fail(`no '${CHECKPOINT_FORMAT}' record in the metadata`);
    }
    const weights = new Map<string, Tensor>();
    const optTensors = new Map<string, Tensor>();
    const rng: Record<string, Uint8Array> = {};
    for (const [k, v] of tensors) {
      if (k.startsWith('model.')) weights.set(k.slice(6), v);
      else if (k.startsWith('optimizer.')) optTensors.set(k.slice(10), v);
      else if (k.startsWith('rng.')) {
        rng[k.slice(4)] = v.dataSync() as Uint8Array;
        v.dispose();
      } else fail(`unexpected tensor '${k}'`);
    }
    return {
      model: record.model,
      weights,
      optimizer: record.optimizer ? { ...record.optimizer, tensors: optTensors } : undefined,
      rng,
      step: record.step,
      epoch: record.epoch,
      config: record.config,
    };
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
}

/** Reads and verifies the checkpoint file at `path`: a regular file only (FIFOs and devices are refused unread). */
export function loadCheckpointSync(path: string): Checkpoint {
  return decodeCheckpoint(readRegularFileSync(path, { what: 'checkpoint' }), path);
}

/** Frees the tensors a loaded checkpoint holds. */
export function disposeCheckpoint(c: Checkpoint): void {
  for (const t of c.weights.values()) t.dispose();
  if (c.optimizer) for (const t of c.optimizer.tensors.values()) t.dispose();
}
