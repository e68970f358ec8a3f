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

/** A constant rate. */
export function constant(lr: number): Schedule {
  return () => lr;
}
