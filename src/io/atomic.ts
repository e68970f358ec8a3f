/**
 * Atomic file replacement: the target holds either its old contents or all of
 * the new ones, never a prefix, whatever fails and wherever the process dies.
 *
 * The steps (those of `write-file-atomic` and of PyTorch's checkpoint writers):
 * write to a fresh temporary file in the target's directory (same file system,
 * so the rename is atomic), fsync it, rename it over the target, fsync the
 * directory so the rename itself is durable. On any failure before the rename
 * the temporary file is removed and the target is untouched. A process killed
 * mid-write cannot remove its temporary file: the next write of the same
 * target does (see {@link removeStaleTemporaries}).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** What {@link writeFileAtomic} writes: bytes, a UTF-8 string, or chunks written in order. */
export type AtomicData = Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** What {@link writeFileAtomicSync} writes: bytes, a UTF-8 string, or chunks written in order. */
export type AtomicDataSync = Uint8Array | string | Iterable<Uint8Array>;

/** Options of {@link writeFileAtomic} and {@link writeFileAtomicSync}. */
export interface AtomicWriteOptions {
  /**
   * Permission bits of the new file. Default: those of the file being
   * replaced, or 0o666 less the process umask for a new file.
   */
  mode?: number;
}

/** Errors from fsync on a directory that mean "this file system cannot do it", not "it failed". */
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM', 'EACCES', 'EBADF']);

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** The pid in a temporary file name of {@link tempPathFor} for `base`, or undefined for any other name. */
function temporaryPid(name: string, base: string): number | undefined {
  const prefix = `.${base}.`;
  if (!name.startsWith(prefix) || !name.endsWith('.tmp')) return undefined;
  const m = /^([1-9][0-9]*)\.[0-9a-f]{12}$/.exec(name.slice(prefix.length, -'.tmp'.length));
  return m ? Number(m[1]) : undefined;
}

/** Whether a process with this pid exists on this host (one we may not signal exists too). */
function processExists(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) !== 'ESRCH';
  }
}

/**
 * Removes the temporary files that writes of `target` left behind when their
 * process was killed mid-write: only names of the pattern `.<name>.<pid>.<hex>.tmp`
 * for this target, only plain files, only when no process `pid` exists
 * (checked on this host; a live writer's file, this process's included, is
 * kept). Best effort: a file that cannot be removed is left. Returns the
 * paths removed.
 */
export function removeStaleTemporaries(target: string): string[] {
  const dir = dirname(target);
  const base = basename(target);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = temporaryPid(name, base);
    if (pid === undefined || processExists(pid)) continue;
    const path = join(dir, name);
    try {
      if (!fs.lstatSync(path).isFile()) continue;
      fs.unlinkSync(path);
      removed.push(path);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/** The system's words for an error code, from Node's message "EROFS: read-only file system, open '...'". */
function meaning(e: unknown, code: string): string {
  const m = e instanceof Error ? /^[A-Z0-9]+: ([^,]+),/.exec(e.message) : null;
  return `${m ? m[1] : 'failed'} (${code})`;
}

function wrapError(path: string, e: unknown, tmp?: string): Error {
  const code = errCode(e);
  // The temporary file is ours, not the user's: a failure to create it is said of the folder (read-only, no permission).
  const msg = code !== undefined && tmp !== undefined && (e as { path?: unknown }).path === tmp
    ? `cannot create a file in '${dirname(tmp)}': ${meaning(e, code)}`
    : e instanceof Error ? e.message : String(e);
  const err = new Error(`writeFileAtomic: could not write '${path}': ${msg}; any previous file there is unchanged`, {
    cause: e,
  });
  if (code !== undefined) (err as Error & { code?: string }).code = code;
  return err;
}

/**
 * Creates a folder and its missing parents (`mkdir -p`). Node's recursive
 * mkdir says ENOENT when the first missing folder cannot be made, on a
 * read-only file system for one; the cause is found by making that folder
 * alone, and the error names the folder asked for and the cause
 * ("could not create the folder 'out/run': read-only file system (EROFS) at 'out'").
 */
export function makeDirectorySync(path: string): void {
  try {
    fs.mkdirSync(path, { recursive: true });
  } catch (e) {
    let cause = e;
    let at = path;
    if (errCode(e) === 'ENOENT') {
      let first = path;
      while (dirname(first) !== first && !fs.existsSync(dirname(first))) first = dirname(first);
      try {
        fs.mkdirSync(first);
      } catch (e2) {
        if (errCode(e2) !== 'ENOENT' && errCode(e2) !== 'EEXIST') [cause, at] = [e2, dirname(first)];
      }
    }
    const code = errCode(cause);
    const why = code === undefined ? String(cause) : `${meaning(cause, code)} at '${at}'`;
    throw Object.assign(new Error(`could not create the folder '${path}': ${why}`, { cause }), code === undefined ? {} : { code });
  }
}

/** The new file is in place, but the rename may not survive a power cut. */
function dirSyncError(path: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const err = new Error(
    `writeFileAtomic: '${path}' was replaced, but fsync of its directory failed (${msg}); ` +
      'the new contents may not survive a crash',
    { cause: e },
  );
  const code = errCode(e);
  if (code !== undefined) (err as Error & { code?: string }).code = code;
  return err;
}

function isAsyncIterable(x: unknown): x is AsyncIterable<Uint8Array> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x;
}

function checkChunk(chunk: unknown, path: string): Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new TypeError(`writeFileAtomic('${path}'): every chunk must be a Uint8Array`);
  }
  return chunk;
}

/** The file to replace: symbolic links are followed, so the link survives and its target is replaced. */
async function resolveTarget(path: string): Promise<{ target: string; mode: number | undefined }> {
  try {
    const target = await fsp.realpath(path);
    return { target, mode: (await fsp.stat(target)).mode & 0o7777 };
  } catch (e) {
    if (errCode(e) === 'ENOENT') return { target: path, mode: undefined };
    throw e;
  }
}

function resolveTargetSync(path: string): { target: string; mode: number | undefined } {
  try {
    const target = fs.realpathSync(path);
    return { target, mode: fs.statSync(target).mode & 0o7777 };
  } catch (e) {
    if (errCode(e) === 'ENOENT') return { target: path, mode: undefined };
    throw e;
  }
}

/**
 * Replaces the file at `path` with `data`, atomically and durably: a temporary
 * file in the same directory is written, fsynced and renamed over `path`, then
 * the directory is fsynced. If anything fails (including an exception thrown
 * by a chunk iterator), the temporary file is removed, any previous file at
 * `path` keeps its exact contents, and the returned promise rejects with an
 * Error naming `path` (its `cause` and `code` are the underlying error's).
 *
 * `data` may be an iterable or async iterable of chunks, so large files can be
 * written without concatenating them in memory first.
 *
 * Only a failure of the final directory fsync comes after the replacement: it
 * rejects with an Error saying the file was replaced but may not survive a
 * crash. File systems that cannot fsync a directory (EINVAL, ENOTSUP, ...) are
 * not an error.
 */
export async function writeFileAtomic(path: string, data: AtomicData, opts: AtomicWriteOptions = {}): Promise<void> {
  let dir = '';
  let tmp: string | undefined;
  let fh: fsp.FileHandle | undefined;
  try {
    const { target, mode: oldMode } = await resolveTarget(path);
    const mode = opts.mode ?? oldMode;
    removeStaleTemporaries(target);
    tmp = tempPathFor(target);
    fh = await fsp.open(tmp, 'wx', 0o666);
    if (mode !== undefined) await fh.chmod(mode);
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await fh.writeFile(data);
    } else if (isAsyncIterable(data)) {
      for await (const chunk of data) await writeAll(fh, checkChunk(chunk, path));
    } else {
      for (const chunk of data) await writeAll(fh, checkChunk(chunk, path));
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, target);
    tmp = undefined;
    dir = dirname(target);
  } catch (e) {
    if (fh !== undefined) await fh.close().catch(() => undefined);
    if (tmp !== undefined) await fsp.unlink(tmp).catch(() => undefined);
    throw wrapError(path, e, tmp);
  }
  await syncDir(dir).catch((e: unknown) => {
    throw dirSyncError(path, e);
  });
}

async function writeAll(fh: fsp.FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  let dh: fsp.FileHandle | undefined;
  try {
    dh = await fsp.open(dir, 'r');
    await dh.sync();
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has(errCode(e) ?? '')) throw e;
  } finally {
    await dh?.close().catch(() => undefined);
  }
}

/** The synchronous form of {@link writeFileAtomic}, with the same guarantees. */
export function writeFileAtomicSync(path: string, data: AtomicDataSync, opts: AtomicWriteOptions = {}): void {
  let dir = '';
  let tmp: string | undefined;
  let fd: number | undefined;
  try {
    const { target, mode: oldMode } = resolveTargetSync(path);
    const mode = opts.mode ?? oldMode;
    removeStaleTemporaries(target);
    tmp = tempPathFor(target);
    fd = fs.openSync(tmp, 'wx', 0o666);
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    const chunks: Iterable<Uint8Array> =
      typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) {
      const c = checkChunk(chunk, path);
      let done = 0;
      while (done < c.byteLength) done += fs.writeSync(fd, c, done, c.byteLength - done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
    tmp = undefined;
    dir = dirname(target);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    if (tmp !== undefined) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // nothing to remove
      }
    }
    throw wrapError(path, e, tmp);
  }
  try {
    syncDirSync(dir);
  } catch (e) {
    throw dirSyncError(path, e);
  }
}

function syncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has(errCode(e) ?? '')) throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
