/**
 * HTTP plumbing for `advml serve`: errors that carry a status, bounded body
 * reading, JSON replies, and multipart form parsing (through the WHATWG
 * `Request` Node ships, on a body already read under the size limit).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidNumberError, type NumberSpec, readNumber } from '../io/numbers.js';

/** An error the client caused or must see, with its HTTP status; the message is sent as `{"error": message}`. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Reads a numeric request field strictly (src/io/numbers.ts, as the CLI does); a bad value is a 400 naming the field. */
export function numberField(value: unknown, name: string, spec: NumberSpec): number {
  try {
    return readNumber(value, name, spec);
  } catch (e) {
    if (e instanceof InvalidNumberError) throw new HttpError(400, e.message);
    throw e;
  }
}

/** Sends `body` as JSON with `status` (and no caching). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Sends an error as `{"error": message}`. */
export function sendError(res: ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, e.status, { error: e.message }, e.headers);
}

const MiB = 1024 * 1024;

/** A byte count as people read it: '300 KiB', '8 MiB'. */
export function formatBytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/**
 * Reads the request body, at most `maxBytes`. A larger body is a 413: the
 * rest of it is read and dropped (up to 8 times the limit, so the client
 * receives the answer rather than a reset), then the request is refused.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = (): HttpError =>
    new HttpError(413, `the request body is larger than the limit of ${formatBytes(maxBytes)}`, { connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  let over = Number.isFinite(declared) && declared > maxBytes;
  if (over && declared > 8 * maxBytes) {
    req.resume();
    throw tooLarge();
  }
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) over = true;
    if (over) {
      if (size > 8 * maxBytes) {
        req.destroy();
        throw tooLarge();
      }
      continue;
    }
    chunks.push(chunk);
  }
  if (over) throw tooLarge();
  return Buffer.concat(chunks, size);
}

/** The media type of a request, lower case, without parameters. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Parses a multipart/form-data body (already read under the limit). */
export async function parseMultipart(req: IncomingMessage, body: Buffer): Promise<FormData> {
  if (mediaType(req) !== 'multipart/form-data') {
    throw new HttpError(415, `expected a multipart/form-data body (an HTML form with the image), got '${req.headers['content-type'] ?? 'no content type'}'`);
  }
  try {
    const request = new Request('http://localhost/', {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] as string },
      body: new Blob([body as Uint8Array<ArrayBuffer>]), // Buffer.concat never returns shared memory
    });
    return await request.formData();
  } catch (e) {
    throw new HttpError(400, `malformed multipart/form-data body: ${(e as Error).message}`);
  }
}

/** Parses a JSON object body (already read under the limit). */
export function parseJsonObject(req: IncomingMessage, body: Buffer): Record<string, unknown> {
  if (mediaType(req) !== 'application/json') {
    throw new HttpError(415, `expected an application/json body, got '${req.headers['content-type'] ?? 'no content type'}'`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `malformed JSON body: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'the JSON body must be an object');
  return value as Record<string, unknown>;
}
