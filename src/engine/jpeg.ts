/**
 * The image loader's native JPEG path (native/jpeg.cc): libjpeg-turbo decodes,
 * a box is cropped and resized with PIL's antialiased bilinear resampling
 * (torchvision's own), optionally mirrored, on libuv's thread pool.
 */
import { native } from './native.js';

/** What {@link jpegDecodeCrop} cuts and makes. */
export interface JpegCropOptions {
  /** The box in the decoded image (it must lie inside). */
  left: number;
  top: number;
  width: number;
  height: number;
  /** The output size the box is resized to (PIL's BILINEAR with antialiasing). */
  outWidth: number;
  outHeight: number;
  /** Mirror the output left-right. */
  flip?: boolean;
  /** How damaged a file may be (sharp's levels; default 'error': a truncated file or a decoder error rejects). */
  failOn?: 'none' | 'truncated' | 'error' | 'warning';
}

/**
 * Decodes JPEG bytes to RGB (grey replicated, CMYK converted as PIL's
 * convert('RGB')), crops `opts`' box, resizes it and returns
 * outHeight * outWidth * 3 bytes (HWC). Rejects with libjpeg's message for a
 * damaged file. `bytes` must not change until the promise settles.
 */
export function jpegDecodeCrop(bytes: Uint8Array, opts: JpegCropOptions): Promise<Uint8Array> {
  return (native.jpegDecodeCrop as unknown as (b: Uint8Array, o: JpegCropOptions) => Promise<Uint8Array>)(bytes, opts);
}

/** What a JPEG's headers say, read without decoding. */
export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation (1 when absent). */
  orientation: number;
}

/** True when the bytes start like a JPEG (FF D8 FF). */
export function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/** The EXIF orientation in an APP1 segment's payload (from "Exif\0\0"), or 1. */
function exifOrientation(b: Uint8Array, start: number, end: number): number {
  if (end - start < 14 || b[start] !== 0x45 || b[start + 1] !== 0x78 || b[start + 2] !== 0x69 || b[start + 3] !== 0x66) return 1;
  const t = start + 6; // TIFF header
  const little = b[t] === 0x49;
  const u16 = (o: number): number => (little ? (b[o] as number) | ((b[o + 1] as number) << 8) : ((b[o] as number) << 8) | (b[o + 1] as number));
  const u32 = (o: number): number => (little ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
  const ifd = t + u32(t + 4);
  if (ifd + 2 > end) return 1;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > end) break;
    if (u16(e) === 0x0112) return u16(e + 8);
  }
  return 1;
}

/**
 * The size (from the frame header) and EXIF orientation of a JPEG, or
 * null when the headers cannot be walked (the caller then leaves the file to
 * another decoder, which reports the damage).
 */
export function readJpegHeader(b: Uint8Array): JpegHeader | null {
  if (!isJpeg(b)) return null;
  let orientation = 1;
  let size: { width: number; height: number } | null = null;
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return null;
    const marker = b[p + 1] as number;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // the scan (or the end): headers are over
    const len = ((b[p + 2] as number) << 8) | (b[p + 3] as number);
    if (len < 2 || p + 2 + len > b.length) return null;
    const body = p + 4;
    if (marker === 0xe1) {
      const o = exifOrientation(b, body, p + 2 + len);
      if (o !== 1) orientation = o;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      // Baseline, extended and progressive Huffman frames only; others go to the other decoder.
      if (size || len < 8 || marker > 0xc2) return null;
      const height = ((b[body + 1] as number) << 8) | (b[body + 2] as number);
      const width = ((b[body + 3] as number) << 8) | (b[body + 4] as number);
      if (width === 0 || height === 0) return null;
      size = { width, height };
    }
    p += 2 + len;
  }
  return size ? { ...size, orientation } : null;
  return null;
}
