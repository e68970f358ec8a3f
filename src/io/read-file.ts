/**
 * Reading a whole file that must be a regular file of bounded size: model
 * files, checkpoints, safetensors. `readFileSync` on a FIFO with no writer
 * blocks forever, and on /dev/zero (or any device) reads until memory runs
 * out; here the file is opened without blocking, refused unless it is a
 * regular file, and its size is checked against the limit before a byte is
 * read.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { totalmem } from 'node:os';

export interface ReadRegularFileOptions {
  /** The most bytes accepted (default: what fits in one Buffer and in this machine's memory). */
  maxBytes?: number;
  /** What the file is, for errors: 'checkpoint', 'safetensors', 'ONNX model' (default 'file'). */
  what?: string;
}

/** A file that could not be read, or was refused; the message names it and why. */
export class FileReadError extends Error {
  constructor(
    readonly what: string,
    readonly path: string,
    /** What is wrong, without the file name. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${what} ${path}: ${problem}`, options);
    this.name = 'FileReadError';
    const code = errnoCode(options?.cause);
    if (code !== undefined) (this as { code?: string }).code = code;
  }
}

/** The default limit: one Buffer's maximum, and no more than the machine's memory. */
export function defaultMaxFileBytes(): number {
  return Math.min(bufferConstants.MAX_LENGTH, totalmem());
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

// O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer
// (regular files ignore it). Absent on Windows, where FIFOs are not files.
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a plain file';
}

/** The checks made on the open file before reading; returns its size. */
function checkStats(st: fs.Stats, path: string, opts: ReadRegularFileOptions): number {
  const what = opts.what ?? 'file';
  if (!st.isFile()) throw new FileReadError(what, path, `not a regular file (${kindOf(st)}); refusing to read it`);
  const max = opts.maxBytes ?? defaultMaxFileBytes();
  if (st.size > max) throw new FileReadError(what, path, `is ${st.size} bytes, more than the ${max} bytes accepted; refusing to read it`);
  return st.size;
}

function openError(what: string, path: string, e: unknown): FileReadError {
  return new FileReadError(what, path, `cannot read (${errnoCode(e) ?? (e instanceof Error ? e.message : String(e))})`, { cause: e });
}

function shrank(what: string, path: string, got: number, size: number): FileReadError {
  return new FileReadError(what, path, `changed while being read (${got} of the ${size} bytes it had when opened)`);
}

/**
 * The bytes of the regular file at `path` (symbolic links followed). Throws a
 * {@link FileReadError} naming the file when it cannot be opened, is not a
 * regular file (FIFO, device, directory, socket), is larger than
 * `maxBytes`, or shrinks while being read. Never blocks on a FIFO.
 */
export function readRegularFileSync(path: string, opts: ReadRegularFileOptions = {}): Buffer {
  const what = opts.what ?? 'file';
  let fd: number;
  try {
    fd = fs.openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(what, path, e);
  }
  try {
    const size = checkStats(fs.fstatSync(fd), path, opts);
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = fs.readSync(fd, buf, got, size - got, got);
      if (n === 0) throw shrank(what, path, got, size);
      got += n;
    }
    return buf;
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(what, path, `cannot read (${errnoCode(e) ?? (e as Error).message})`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}

/** The asynchronous form of {@link readRegularFileSync}, with the same checks. */
export async function readRegularFile(path: string, opts: ReadRegularFileOptions = {}): Promise<Buffer> {
  const what = opts.what ?? 'file';
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(what, path, e);
  }
  try {
    const size = checkStats(await fh.stat(), path, opts);
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) throw shrank(what, path, got, size);
      got += bytesRead;
    }
    return buf;
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(what, path, `cannot read (${errnoCode(e) ?? (e as Error).message})`, { cause: e });
  } finally {
    await fh.close();
  }
}
