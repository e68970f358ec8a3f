/**
 * 8-bit raster images for the example grids: the pixel type, nearest-neighbour
 * upscaling and PNG encoding. The encoder is the same minimal one as
 * `io/png.ts` (filter 0 on every row, zlib from Node), kept here without that
 * module's tensor import so that reports load neither libtorch nor the addon.
 */
import { crc32, deflateSync } from 'node:zlib';

/** An 8-bit image: interleaved pixels [height][width][channels]. */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 3;
  pixels: Uint8Array;
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Encodes a {@link RasterImage} as PNG bytes (8-bit grayscale or truecolour). */
export function rasterToPng(img: RasterImage): Uint8Array {
  const { width, height, channels, pixels } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`rasterToPng: width and height must be positive integers, got ${width}x${height}`);
  }
  if (pixels.length !== width * height * channels) {
    throw new Error(`rasterToPng: ${pixels.length} bytes for a ${width}x${height}x${channels} image (expected ${width * height * channels})`);
  }
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header[8] = 8;
  header[9] = channels === 1 ? 0 : 2;
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** A PNG data URI of a raster image. */
export function pngDataUri(img: RasterImage): string {
  return `data:image/png;base64,${Buffer.from(rasterToPng(img)).toString('base64')}`;
}

/** Nearest-neighbour upscaling by a whole factor (pixels stay sharp squares). */
export function upscale(img: RasterImage, factor: number): RasterImage {
  if (!(Number.isInteger(factor) && factor >= 1)) throw new Error(`upscale: factor must be a positive integer, got ${factor}`);
  if (factor === 1) return img;
  const { width: w, height: h, channels: c } = img;
  const out = new Uint8Array(w * factor * h * factor * c);
  for (let y = 0; y < h * factor; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < w * factor; x++) {
      const s = (sy * w + Math.floor(x / factor)) * c;
      const d = (y * w * factor + x) * c;
      for (let k = 0; k < c; k++) out[d + k] = img.pixels[s + k] as number;
    }
  }
  return { width: w * factor, height: h * factor, channels: c, pixels: out };
}
