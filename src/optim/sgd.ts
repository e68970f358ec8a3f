/** Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's torch.optim.SGD). */
import { type Tensor } from '../engine/index.js';
import { Optimizer, checkRange } from './optimizer.js';

export interface SGDOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient: g + weightDecay * p. */
  weightDecay?: number;
}

/**
 * g = grad + wd p; b = momentum b + (1 - dampening) g (b = g on the first
 * step); d = nesterov ? g + momentum b : b; p -= lr d.
 */
export class SGD extends Optimizer {
  private readonly momentum: number;
  private readonly dampening: number;
  private readonly nesterov: boolean;
  private readonly weightDecay: number;

  constructor(params: Tensor[], lr: number, opts: SGDOptions = {}) {
    super(params, lr, 'SGD');
    this.momentum = checkRange('SGD', 'momentum', opts.momentum ?? 0, 0, 1);
    this.dampening = checkRange('SGD', 'dampening', opts.dampening ?? 0, 0, 1);
    this.weightDecay = checkRange('SGD', 'weightDecay', opts.weightDecay ?? 0, 0, Infinity);
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error('SGD: nesterov needs momentum > 0 and dampening 0');
    }
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>): void {
    let g = this.weightDecay ? grad.add(p, this.weightDecay) : grad;
    if (this.momentum) {
      const fresh = !state.has('momentum_buffer');
      const buf = this.slot(state, 'momentum_buffer', () => g.clone());
      if (!fresh) buf.mul_(this.momentum).add_(g, 1 - this.dampening);
      g = this.nesterov ? g.add(buf, this.momentum) : buf;
    }
    p.add_(g, -this.lr);
  }
}
