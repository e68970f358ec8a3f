/**
 * Integrity of a zip archive (the container of TorchScript's .pt files): every
 * entry's bytes against the CRC-32 its central directory records. libtorch's
 * reader does not check them, so a flipped bit in a weight would load as a
 * wrong weight; here it is refused, naming the entry.
 */
import { crc32, inflateRawSync } from 'node:zlib';

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Throws `${source}: ...` unless `bytes` is a complete zip archive whose entries match their CRC-32. */
export function checkZipArchive(bytes: Uint8Array, source: string): void {
  const fail = (why: string): never => {
    throw new Error(`${source}: not an intact zip archive (${why})`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number): number => Number(view.getBigUint64(at, true));
  const inside = (at: number, n: number): boolean => at >= 0 && at + n <= bytes.length;

  // The end record is in the last 64 KiB + 22 bytes (its comment is at most 64 KiB).
  let end = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (u32(at) === EOCD) {
      end = at;
      break;
    }
  }
  if (end < 0) fail('no end-of-directory record: the file is truncated or not a zip archive');
  let entries = u16(end + 10);
  let dirOffset = u32(end + 16);
  if (inside(end - 20, 20) && u32(end - 20) === EOCD64_LOCATOR) {
    const at = u64(end - 20 + 8);
    if (!inside(at, 56) || u32(at) !== EOCD64) fail('a zip64 end record that points outside the file');
    entries = u64(at + 32);
    dirOffset = u64(at + 48);
  }
  let at = dirOffset;
  for (let i = 0; i < entries; i++) {
    if (!inside(at, 46) || u32(at) !== CENTRAL) fail(`directory entry ${i} is missing`);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    let compressed = u32(at + 20);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    let local = u32(at + 42);
    if (!inside(at + 46, nameLength + extraLength)) fail(`directory entry ${i} is cut off`);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // zip64 sizes and offsets, in the order of the fields that were saturated.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = u16(extra);
      const size = u16(extra + 2);
      if (id === 0x0001) {
        let p = extra + 4;
        if (u32(at + 24) === 0xffffffff) p += 8;
        if (compressed === 0xffffffff) {
          compressed = u64(p);
          p += 8;
        }
        if (local === 0xffffffff) local = u64(p);
      }
      extra += 4 + size;
    }
    if (!inside(local, 30) || u32(local) !== LOCAL) fail(`entry '${name}' has no local header`);
    const data = local + 30 + u16(local + 26) + u16(local + 28);
    if (!inside(data, compressed)) fail(`entry '${name}' is cut off`);
    let content = bytes.subarray(data, data + compressed);
    if (method === 8) {
      try {
        content = inflateRawSync(content);
      } catch {
        fail(`entry '${name}' does not inflate`);
      }
    } else if (method !== 0) {
      fail(`entry '${name}' uses compression method ${method}`);
    }
    if (crc32(content) >>> 0 !== crc) fail(`entry '${name}' does not match its CRC-32: the file is corrupt`);
    at += 46 + nameLength + extraLength + commentLength;
  }
}
