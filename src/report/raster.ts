/**
 * 8-bit raster images for the example grids: the pixel type, nearest-neighbour
 * upscaling and PNG encoding (io/png-encode.ts, which loads neither libtorch
 * nor the addon).
 */
import { encodePng } from '../io/png-encode.js';

/** An 8-bit image: interleaved pixels [height][width][channels]. */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 3;
  pixels: Uint8Array;
}

/** Encodes a {@link RasterImage} as PNG bytes (8-bit grayscale or truecolour). */
export function rasterToPng(img: RasterImage): Uint8Array {
  return encodePng(img.pixels, img.width, img.height, img.channels);
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
