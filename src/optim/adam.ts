/**
 * Adam (torch.optim.Adam): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). weightDecay adds
 * wd p to the gradient (L2, not AdamW's decoupled decay).
 */
import { type Tensor, zerosLike } from '../engine/index.js';
import { Optimizer, checkRange } from './optimizer.js';

export interface AdamOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam extends Optimizer {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;

  constructor(params: Tensor[], lr = 1e-3, opts: AdamOptions = {}) {
    super(params, lr, 'Adam');
    const [b1, b2] = opts.betas ?? [0.9, 0.999];
    this.beta1 = checkRange('Adam', 'betas[0]', b1, 0, 1);
    this.beta2 = checkRange('Adam', 'betas[1]', b2, 0, 1);
    this.eps = checkRange('Adam', 'eps', opts.eps ?? 1e-8, 0, Infinity);
    this.weightDecay = checkRange('Adam', 'weightDecay', opts.weightDecay ?? 0, 0, Infinity);
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>): void {
    const g = this.weightDecay ? grad.add(p, this.weightDecay) : grad;
    const m = this.slot(state, 'exp_avg', () => zerosLike(p));
    const v = this.slot(state, 'exp_avg_sq', () => zerosLike(p));
    m.mul_(this.beta1).add_(g, 1 - this.beta1);
    v.mul_(this.beta2).addcmul_(g, g, 1 - this.beta2);
    const t = this.stepCount;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    const denom = v.div(c2).sqrt().add(this.eps);
    p.addcdiv_(m, denom, -this.lr / c1);
  }
}
