/** The shape of a CLI command and the shared argument helpers. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MAX_ATTACK_STEPS } from '../attacks/iterative.js';
import { InvalidNumberError, type NumberSpec, readNumber } from '../io/numbers.js';

export interface Command {
  name: string;
  /** The full `advml NAME --help` text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** A usage error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>>;

/** Parses options strictly: an unknown option or a missing value is a UsageError naming it. */
export function parseOptions<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (e) {
    throw new UsageError(`advml ${command}: ${(e as Error).message} (see 'advml ${command} --help')`);
  }
}

/** Reads a numeric option strictly (src/io/numbers.ts): a malformed or out-of-range value is a UsageError naming it. */
export function numberOption(command: string, name: string, value: string, spec: NumberSpec): number {
  try {
    return readNumber(value, `--${name}`, spec);
  } catch (e) {
    if (e instanceof InvalidNumberError) throw new UsageError(`advml ${command}: ${e.message}`);
    throw e;
  }
}

/** Reads a positive integer option. */
export function positiveInt(command: string, name: string, value: string | undefined, fallback: number): number {
  return value === undefined ? fallback : numberOption(command, name, value, { integer: true, min: 1 });
}

/** Reads a non-negative integer option (seeds). */
export function nonNegativeInt(command: string, name: string, value: string | undefined, fallback: number): number {
  return value === undefined ? fallback : numberOption(command, name, value, { integer: true, min: 0 });
}

/** Help text of --steps, shared by the commands that take it. */
export const STEPS_HELP = `--steps N         steps of the iterative methods, at most ${MAX_ATTACK_STEPS}
                    (default: each method's own; see docs/attacks.md)`;

/** Reads --steps: iterative attacks only, bounded so that a typo cannot run for days. */
export function stepsOption(command: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : numberOption(command, 'steps', value, { integer: true, min: 1, max: MAX_ATTACK_STEPS });
}
