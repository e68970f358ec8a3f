/** The JSON API of `advml serve` (src/serve/server.ts), as the page uses it. */

/** A model and where it is in its start-up. */
export interface ModelState {
  name: string;
  description: string;
  status: 'training' | 'loading' | 'ready' | 'failed';
  progress?: number;
  error?: string;
  info?: { inputShape: [number, number, number]; inputRange: [number, number]; classes: number; classNames: string[] };
  testSets: ('mnist' | 'fashion-mnist')[];
}

/** A sample image offered by the server. */
export interface SampleInfo {
  id: string;
  title: string;
  kind: 'photo' | 'mnist' | 'fashion-mnist';
  label?: number;
  labelName?: string;
}

/** GET /api/config. */
export interface Config {
  models: ModelState[];
  methods: string[];
  labelSources: string[];
  /** Each method's own label source ('none' where it takes no label). */
  methodLabels: Record<string, string>;
  samples: SampleInfo[];
  eps: { max: number; apiMax: number };
  curve: { eps: number[]; datasets: ('mnist' | 'fashion-mnist')[]; defaultImages: number; maxImages: number };
  limits: { maxUploadBytes: number; maxPixels: number; maxPending: number; timeoutMs: number; maxSteps: number };
}

/** One prediction. */
export interface Prediction {
  index: number;
  name: string;
  probability: number;
}

/** One model's result in POST /api/attack. */
export interface AttackResult {
  model: string;
  labelSource: string;
  trueLabel: { index: number; name: string } | null;
  clean: { image: string; top5: Prediction[] };
  perturbation: { image: string; magnification: number; linf: number; l2: number };
  adversarial: { image: string; top5: Prediction[] };
  ms: number;
}

/** POST /api/attack. */
export interface AttackResponse {
  method: string;
  eps: number;
  seed: number;
  image: { source: string; width: number; height: number; format: string };
  results: AttackResult[];
}

/** POST /api/curve. */
export interface CurveResponse {
  dataset: string;
  images: number;
  method: string;
  eps: number[];
  curves: { model: string; labelSource: string; accuracy: number[]; ms: number }[];
  skipped: { model: string; reason: string }[];
}

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new Error((body as { error?: string }).error ?? `HTTP ${res.status}`);
  return body as T;
}

/** Fetches the server's configuration and model status. */
export async function getConfig(): Promise<Config> {
  return parse<Config>(await fetch('./api/config'));
}

/** Runs an attack: `form` holds image or sample, model (1-2), method, eps, label. */
export async function postAttack(form: FormData): Promise<AttackResponse> {
  return parse<AttackResponse>(await fetch('./api/attack', { method: 'POST', body: form }));
}

/** Measures accuracy against eps. */
export async function postCurve(body: { models: string[]; method: string; label?: string; dataset: string; images: number }): Promise<CurveResponse> {
  return parse<CurveResponse>(await fetch('./api/curve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
}

/** The URL of a sample's thumbnail. */
export function sampleUrl(id: string): string {
  return `./api/samples/${encodeURIComponent(id)}.png`;
}
