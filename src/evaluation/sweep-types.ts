/**
 * The JSON `advml sweep` writes: one entry per trained model of a capacity or
 * activation study, each with its evaluation grid.
 */
import type { EvalResult } from './evaluate.js';

export interface SweepEntry {
  /** Width multiplier of every convolution (the paper's rho). */
  rho: number;
  activation: string;
  /** Trained with adversarial examples (k > 0) or plainly. */
  adversarial: boolean;
  /** Checkpoint of the trained model. */
  checkpoint: string;
  parameters: number;
  trainSeconds: number;
  result: EvalResult;
}

export interface SweepResult {
  preset: string;
  /** 'capacity' varies rho, 'activation' varies the activation function. */
  study: 'capacity' | 'activation';
  methods: string[];
  eps: number[];
  entries: SweepEntry[];
}
