/**
 * Strict reading of numbers that users write: command-line options and the
 * fields of HTTP requests. `Number()` takes '0x10' as 16, '' and '  ' as 0,
 * '1e999' as Infinity and ' 5 ' as 5, so a typo becomes a silent value; here
 * only a plain decimal (optional minus, digits, optional fraction, optional
 * exponent) within the stated bounds is a number.
 */

/** What a value must be. */
export interface NumberSpec {
  /** Whole numbers only (and safe integers: no precision lost). */
  integer?: boolean;
  /** Smallest value allowed (inclusive). */
  min?: number;
  /** A bound the value must exceed (exclusive), for quantities that cannot be zero: scales, timeouts. */
  greaterThan?: number;
  /** Largest value allowed (inclusive). */
  max?: number;
  /** A bound the value must stay under (exclusive). */
  lessThan?: number;
  /** The unit, said after the range in messages ('pixel values'). */
  unit?: string;
}

/** A value that is not a number of the expected kind; the message names it, its value and what was expected. */
export class InvalidNumberError extends Error {
  override name = 'InvalidNumberError';
}

const DECIMAL = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The expectation in words: 'a positive integer', 'a number in [0, 255] pixel values', 'a number in (0, 1]'. */
export function describeNumber(spec: NumberSpec): string {
  const kind = spec.integer ? 'integer' : 'number';
  const a = spec.integer ? 'an' : 'a';
  const { min, greaterThan: gt, max, lessThan: lt } = spec;
  const lower = min !== undefined ? `[${min}` : gt !== undefined ? `(${gt}` : undefined;
  const upper = max !== undefined ? `${max}]` : lt !== undefined ? `${lt})` : undefined;
  let text: string;
  if (lower !== undefined && upper !== undefined) text = `${a} ${kind} in ${lower}, ${upper}`;
  else if (spec.integer && min === 1) text = 'a positive integer';
  else if (spec.integer && min === 0) text = 'a non-negative integer';
  else if (gt === 0) text = `a positive ${kind}`;
  else if (min !== undefined) text = `${a} ${kind} >= ${min}`;
  else if (gt !== undefined) text = `${a} ${kind} > ${gt}`;
  else if (max !== undefined) text = `${a} ${kind} <= ${max}`;
  else if (lt !== undefined) text = `${a} ${kind} < ${lt}`;
  else text = spec.integer ? 'an integer' : 'a finite number';
  return spec.unit ? `${text} ${spec.unit}` : text;
}

/**
 * Reads `value` (text, or a number from parsed JSON) as a number meeting
 * `spec`; throws InvalidNumberError "NAME must be EXPECTED, got 'VALUE'"
 * otherwise. `name` is how the user wrote it: '--steps', 'eps'.
 */
export function readNumber(value: unknown, name: string, spec: NumberSpec = {}): number {
  const fail = (why = ''): never => {
    const shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value);
    throw new InvalidNumberError(`${name} must be ${describeNumber(spec)}${why}, got ${shown}`);
  };
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && DECIMAL.test(value)) n = Number(value);
  else return fail();
  if (!Number.isFinite(n)) return fail();
  // '1e20' is a whole number, so say why it is refused: beyond 2^53 integers are not exact.
  if (spec.integer && !Number.isSafeInteger(n)) {
    const unbounded = Number.isInteger(n) && spec.max === undefined && spec.lessThan === undefined;
    return fail(unbounded ? ` (at most ${Number.MAX_SAFE_INTEGER}, 2^53 - 1)` : '');
  }
  if (spec.min !== undefined && n < spec.min) return fail();
  if (spec.greaterThan !== undefined && n <= spec.greaterThan) return fail();
  if (spec.max !== undefined && n > spec.max) return fail();
  if (spec.lessThan !== undefined && n >= spec.lessThan) return fail();
  // -0 reads as 0: '-0' is a zero, not a sign to keep.
  return n === 0 ? 0 : n;
}
