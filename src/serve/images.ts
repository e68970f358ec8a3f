/**
 * Uploaded and sample images for `advml serve`: checked (format, pixel count)
 * before anything is decoded, then decoded, centre-cropped and resized by
 * sharp (on libuv's thread pool, off the event loop) to the exact input of each
 * model, as 8-bit pixels. Nothing is written to disk.
 */
import sharp, { type Metadata } from 'sharp';
import { HttpError } from './http.js';
import type { ModelInfo, PreparedImage } from './protocol.js';

/** Raster formats accepted (SVG is refused: it can reference other files). */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif'] as const;

/** What an image must satisfy. */
export interface ImageLimits {
  /** Largest number of pixels (width x height) an image may decode to. */
  maxPixels: number;
}

/** Width, height and format of an encoded image, checked against `limits`. */
export async function probeImage(bytes: Uint8Array, limits: ImageLimits): Promise<{ width: number; height: number; format: string }> {
  if (bytes.length === 0) throw new HttpError(400, 'the image file is empty');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new HttpError(415, `the file is not an image this server reads (${IMAGE_FORMATS.join(', ')}): ${(e as Error).message}`);
  }
  const format = meta.format ?? 'unknown';
  if (!(IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new HttpError(415, `images in ${format} format are not accepted; use ${IMAGE_FORMATS.join(', ')}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width < 1 || height < 1) throw new HttpError(400, 'the image has no pixels');
  if (width * height > limits.maxPixels) {
    throw new HttpError(413, `the image is ${width}x${height} = ${((width * height) / 1e6).toFixed(1)} megapixels, more than the limit of ${(limits.maxPixels / 1e6).toFixed(1)}`);
  }
  return { width, height, format };
}

/**
 * The image as one model takes it: EXIF orientation applied, transparency
 * flattened onto white, scaled to cover the model's input and centre-cropped,
 * in grey or RGB as the model has 1 or 3 channels.
 */
export async function prepareImage(bytes: Uint8Array, info: Pick<ModelInfo, 'inputShape'>, limits: ImageLimits): Promise<PreparedImage> {
  const [c, h, w] = info.inputShape;
  if (c !== 1 && c !== 3) throw new HttpError(400, `models with ${c} input channels cannot take images`);
  try {
    let pipeline = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .resize(w, h, { fit: 'cover', position: 'centre' });
    pipeline = c === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
    const { data, info: out } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (out.width !== w || out.height !== h || out.channels !== c) {
      throw new Error(`decoded to ${out.channels}x${out.height}x${out.width}, expected ${c}x${h}x${w}`);
    }
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: w, height: h, channels: c };
  } catch (e) {
    throw new HttpError(400, `the image could not be decoded: ${(e as Error).message}`);
  }
}
