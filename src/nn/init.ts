/**
 * Weight initialisers. Each fills a tensor in place without recording
 * gradients, drawing from `generator` when given (else the global one).
 */
import { type Generator, type Tensor, noGrad, truncatedNormal } from '../engine/index.js';

/** fan_in and fan_out of a weight: [out, in] or [out, in/groups, kH, kW]. */
export function fans(w: Tensor): { fanIn: number; fanOut: number } {
  const s = w.shape;
  if (s.length < 2) throw new Error(`fans: need a weight of rank >= 2, got shape [${s}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (s[1] as number) * receptive, fanOut: (s[0] as number) * receptive };
}

export function uniform_(t: Tensor, low: number, high: number, generator?: Generator): Tensor {
  return noGrad(() => t.uniform_(low, high, generator));
}

export function normal_(t: Tensor, mean: number, std: number, generator?: Generator): Tensor {
  return noGrad(() => t.normal_(mean, std, generator));
}

/**
 * PyTorch's default for Conv2d and Linear weights: kaiming_uniform with
 * a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
export function torchDefaultWeight_(w: Tensor, generator?: Generator): Tensor {
  const bound = 1 / Math.sqrt(fans(w).fanIn);
  return uniform_(w, -bound, bound, generator);
}

/** He et al. normal init for ReLU networks: N(0, 2 / fan), fan_out by default as torchvision's ResNet. */
export function kaimingNormal_(w: Tensor, opts: { mode?: 'fanIn' | 'fanOut'; generator?: Generator } = {}): Tensor {
  const f = fans(w);
  const fan = (opts.mode ?? 'fanOut') === 'fanIn' ? f.fanIn : f.fanOut;
  return normal_(w, 0, Math.sqrt(2 / fan), opts.generator);
}

/** Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Keras' default). */
export function xavierUniform_(w: Tensor, generator?: Generator): Tensor {
  const f = fans(w);
  const a = Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform_(w, -a, a, generator);
}

/** Truncated normal within two standard deviations (TensorFlow's truncated_normal initializer). */
export function truncatedNormal_(w: Tensor, std: number, generator?: Generator): Tensor {
  const values = truncatedNormal(w.shape, { std, generator, dtype: w.dtype });
  noGrad(() => w.copy_(values));
  values.dispose();
  return w;
}
