/** The shape of a CLI command and the shared argument helpers. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

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

/** Reads a positive integer option. */
export function positiveInt(command: string, name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`advml ${command}: --${name} must be a positive integer, got '${value}'`);
  return n;
}

/** Reads a non-negative integer option (seeds). */
export function nonNegativeInt(command: string, name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new UsageError(`advml ${command}: --${name} must be a non-negative integer, got '${value}'`);
  return n;
}
