/** PNG files of image tensors (adversarial images written by the CLI). */
import { type Tensor, noGrad, scope } from '../engine/index.js';
import { encodePng } from './png-encode.js';

export { encodePng };

/**
 * PNG bytes for one image tensor [C, H, W] (C = 1 or 3) whose values lie in
 * `range`; values are mapped linearly to 0-255, rounded and clipped.
 */
export function tensorToPng(image: Tensor, range: [number, number] = [0, 1]): Uint8Array {
  const s = image.shape;
  if (s.length !== 3 || (s[0] !== 1 && s[0] !== 3)) throw new Error(`tensorToPng: need an image [1 or 3, H, W], got [${s}]`);
  const [c, h, w] = s as [1 | 3, number, number];
  const bytes = noGrad(() =>
    scope(() => image.detach().sub(range[0]).mul(255 / (range[1] - range[0])).round().clamp(0, 255).permute([1, 2, 0]).contiguous().to('uint8').dataSync()),
  ) as Uint8Array;
  return encodePng(bytes, w, h, c);
}
