/**
 * Learning-rate schedules: functions from the step count (0-based) to a rate.
 * Assign `optimizer.lr = schedule(step)` before each step.
 */

export type Schedule = (step: number) => number;

function positive(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${name} must be a positive finite number, got ${v}`);
  return v;
}

/**
 * initial * rate^(step / decaySteps), with the exponent floored when
 * `staircase` (the default). The paper's Inception v3 recipe: initial 0.045,
 * rate 0.94, decaySteps = 2 epochs worth of steps.
 */
export function exponentialDecay(opts: { initial: number; rate: number; decaySteps: number; staircase?: boolean }): Schedule {
  positive('exponentialDecay initial', opts.initial);
  positive('exponentialDecay rate', opts.rate);
  positive('exponentialDecay decaySteps', opts.decaySteps);
  const staircase = opts.staircase ?? true;
  return (step) => {
    const e = step / opts.decaySteps;
    return opts.initial * opts.rate ** (staircase ? Math.floor(e) : e);
  };
}

/** initial * gamma^floor(step / stepSize) (PyTorch's StepLR, counted in steps). */
export function stepDecay(opts: { initial: number; gamma: number; stepSize: number }): Schedule {
  positive('stepDecay initial', opts.initial);
  positive('stepDecay stepSize', opts.stepSize);
  return (step) => opts.initial * opts.gamma ** Math.floor(step / opts.stepSize);
}

/** min + (initial - min) (1 + cos(pi t / total)) / 2, constant at min after totalSteps. */
export function cosineDecay(opts: { initial: number; totalSteps: number; min?: number }): Schedule {
  positive('cosineDecay initial', opts.initial);
  positive('cosineDecay totalSteps', opts.totalSteps);
  const min = opts.min ?? 0;
  return (step) => min + ((opts.initial - min) * (1 + Math.cos((Math.PI * Math.min(step, opts.totalSteps)) / opts.totalSteps))) / 2;
}

/**
 * The triangular one-cycle schedule of fast adversarial training (Wong et al.
 * 2020): linear from 0 up to `peak` at `peakAt` of the run (default 2/5), then
 * linear down to 0 at totalSteps. Step s is given the rate of the point
 * (s + 1) / totalSteps, as the reference's per-batch update, so the first
 * step's rate is not 0; 0 after totalSteps.
 */
export function cyclic(opts: { peak: number; totalSteps: number; peakAt?: number }): Schedule {
  positive('cyclic peak', opts.peak);
  positive('cyclic totalSteps', opts.totalSteps);
  const peakAt = opts.peakAt ?? 0.4;
  if (!(peakAt > 0 && peakAt < 1)) throw new Error(`cyclic peakAt must be in (0, 1), got ${peakAt}`);
  return (step) => {
    const t = Math.min(1, (step + 1) / opts.totalSteps);
    return t <= peakAt ? (opts.peak * t) / peakAt : (opts.peak * (1 - t)) / (1 - peakAt);
  };
}

/** A constant rate. */
export function constant(lr: number): Schedule {
  return () => lr;
}
