/**
 * Typed access to a node's attributes. Every read records the name, so after
 * an operator is built the loader can refuse attributes it never looked at:
 * an attribute the implementation does not know would otherwise be silently
 * ignored and give wrong results.
 */
import type { AttributeValue, TensorData } from './proto.js';

export class Attributes {
  private readonly read = new Set<string>();

  constructor(
    private readonly values: Map<string, AttributeValue>,
    /** Throws a load error naming the node; given the problem. */
    private readonly refuse: (problem: string) => never,
  ) {}

  has(name: string): boolean {
    this.read.add(name);
    return this.values.has(name);
  }

  private get<K extends AttributeValue['kind']>(name: string, kind: K): Extract<AttributeValue, { kind: K }> | undefined {
    this.read.add(name);
    const v = this.values.get(name);
    if (v === undefined) return undefined;
    if (v.kind !== kind) this.refuse(`attribute '${name}' must be of type ${kind}, got ${v.kind === 'other' ? `type code ${v.type}` : v.kind}`);
    return v as Extract<AttributeValue, { kind: K }>;
  }

  int(name: string, fallback: number): number {
    return this.get(name, 'int')?.value ?? fallback;
  }

  float(name: string, fallback: number): number {
    return this.get(name, 'float')?.value ?? fallback;
  }

  string(name: string, fallback: string): string {
    return this.get(name, 'string')?.value ?? fallback;
  }

  ints(name: string): number[] | undefined {
    return this.get(name, 'ints')?.value;
  }

  floats(name: string): number[] | undefined {
    return this.get(name, 'floats')?.value;
  }

  tensor(name: string): TensorData | undefined {
    return this.get(name, 'tensor')?.value;
  }

  /** Refuses a boolean-like int attribute other than 0 or 1. */
  flag(name: string, fallback: 0 | 1): boolean {
    const v = this.int(name, fallback);
    if (v !== 0 && v !== 1) this.refuse(`attribute '${name}' must be 0 or 1, got ${v}`);
    return v === 1;
  }

  /** Names present in the node but never read by the operator's implementation. */
  unread(): string[] {
    return [...this.values.keys()].filter((k) => !this.read.has(k));
  }
}
