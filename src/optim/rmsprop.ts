/**
 * RMSProp in two variants. 'pytorch' is torch.optim.RMSprop. 'tensorflow' is
 * the update TensorFlow's RMSPropOptimizer applies and Inception v3 was
 * trained with (decay 0.9, momentum 0.9, epsilon 1.0): the mean square starts
 * at 1, epsilon sits inside the square root, and the learning rate enters the
 * momentum accumulator:
 *   ms = rho ms + (1 - rho) g^2;  mom = momentum mom + lr g / sqrt(ms + eps);  p -= mom
 */
import { type Tensor, onesLike, zerosLike } from '../engine/index.js';
import { Optimizer, checkRange } from './optimizer.js';

export type RMSPropVariant = 'pytorch' | 'tensorflow';

export interface RMSPropOptions {
  variant?: RMSPropVariant;
  /** Decay of the mean square: alpha in PyTorch, rho/decay in TensorFlow (default 0.99 / 0.9). */
  alpha?: number;
  /** Default 1e-8 (pytorch) or 1.0 (tensorflow, Inception v3's setting). */
  eps?: number;
  /** Default 0 (pytorch) or 0.9 (tensorflow). */
  momentum?: number;
  /** Divide by the centred second moment (variance) instead of the mean square. */
  centered?: boolean;
  weightDecay?: number;
}

export class RMSProp extends Optimizer {
  readonly variant: RMSPropVariant;
  private readonly alpha: number;
  private readonly eps: number;
  private readonly momentum: number;
  private readonly centered: boolean;
  private readonly weightDecay: number;

  constructor(params: Tensor[], lr: number, opts: RMSPropOptions = {}) {
    super(params, lr, 'RMSProp');
    this.variant = opts.variant ?? 'pytorch';
    if (this.variant !== 'pytorch' && this.variant !== 'tensorflow') {
      throw new Error(`RMSProp: variant must be 'pytorch' or 'tensorflow', got '${String(opts.variant)}'`);
    }
    const tf = this.variant === 'tensorflow';
    this.alpha = checkRange('RMSProp', 'alpha', opts.alpha ?? (tf ? 0.9 : 0.99), 0, 1);
    this.eps = checkRange('RMSProp', 'eps', opts.eps ?? (tf ? 1.0 : 1e-8), 0, Infinity);
    this.momentum = checkRange('RMSProp', 'momentum', opts.momentum ?? (tf ? 0.9 : 0), 0, 1);
    this.centered = opts.centered ?? false;
    this.weightDecay = checkRange('RMSProp', 'weightDecay', opts.weightDecay ?? 0, 0, Infinity);
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>): void {
    const g = this.weightDecay ? grad.add(p, this.weightDecay) : grad;
    const tf = this.variant === 'tensorflow';
    const sq = this.slot(state, 'square_avg', () => (tf ? onesLike(p) : zerosLike(p)));
    sq.mul_(this.alpha).addcmul_(g, g, 1 - this.alpha);
    let second = sq;
    if (this.centered) {
      const gAvg = this.slot(state, 'grad_avg', () => zerosLike(p));
      gAvg.mul_(this.alpha).add_(g, 1 - this.alpha);
      second = sq.sub(gAvg.square());
    }
    const denom = tf ? second.add(this.eps).sqrt() : second.sqrt().add(this.eps);
    if (tf) {
      const mom = this.slot(state, 'momentum_buffer', () => zerosLike(p));
      mom.mul_(this.momentum).addcdiv_(g, denom, this.lr);
      p.add_(mom, -1);
    } else if (this.momentum > 0) {
      const buf = this.slot(state, 'momentum_buffer', () => zerosLike(p));
      buf.mul_(this.momentum).addcdiv_(g, denom, 1);
      p.add_(buf, -this.lr);
    } else {
      p.addcdiv_(g, denom, -this.lr);
    }
  }
}
