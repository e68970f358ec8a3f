/** The JSON API of `advml serve`, as the page calls it; the types are the server's own (src/serve/api-types.ts). */
import type { AttackResponse, Config, CurveResponse, ErrorResponse } from '../../src/serve/api-types.js';

export type * from '../../src/serve/api-types.js';

/** An answer the server refused, with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new ApiError(res.status, (body as Partial<ErrorResponse>).error ?? `HTTP ${res.status}`);
  return body as T;
}

/** Fetches the server's configuration, model status and opening view. */
export async function getConfig(): Promise<Config> {
  return parse<Config>(await fetch('./api/config'));
}

/** Runs an attack: `form` holds image or sample, model (1-3), method, eps, label, and optionally steps, stepSize, target. */
export async function postAttack(form: FormData): Promise<AttackResponse> {
  return parse<AttackResponse>(await fetch('./api/attack', { method: 'POST', body: form }));
}

/** Measures accuracy against eps for each model and method. */
export async function postCurve(body: { models: string[]; methods: string[]; label?: string; dataset: string; images: number }): Promise<CurveResponse> {
  return parse<CurveResponse>(await fetch('./api/curve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
}

/** The URL of a sample's thumbnail. */
export function sampleUrl(id: string): string {
  return `./api/samples/${encodeURIComponent(id)}.png`;
}
