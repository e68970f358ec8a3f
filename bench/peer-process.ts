/** The PyTorch peer (bench/peer.py) as a child process answering JSON requests. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What the peer reports when it starts. */
export interface PeerInfo {
  torch: string;
  /** PyTorch's thread count before any request sets it. */
  threads: number;
}

/**
 * The PyTorch process: one JSON request per line, one answer per line.
 * `env` adds variables to its environment (e.g. glibc's MALLOC_* settings).
 */
export function startPeer(python = '/usr/bin/python3', env: Record<string, string> = {}): { ask: (req: object) => Promise<{ imagesPerSec: number }>; close: () => void; version: Promise<string>; info: Promise<PeerInfo> } {
  const script = fileURLToPath(new URL('./peer.py', import.meta.url));
  const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines = createInterface({ input: child.stdout });
  const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  lines.on('line', (line) => waiting.shift()?.resolve(line));
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`PyTorch peer exited with code ${code}`));
  });
  child.on('error', (e) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`PyTorch peer could not start (${python}): ${e.message}`));
  });
  const next = (): Promise<string> => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  const info = next().then((l) => JSON.parse(l) as PeerInfo);
  return {
    info,
    version: info.then((i) => i.torch),
    ask: async (req) => {
      const answer = next();
      child.stdin.write(JSON.stringify(req) + '\n');
      const out = JSON.parse(await answer) as { imagesPerSec: number; error?: string };
      if (out.error) throw new Error(`PyTorch peer failed on ${JSON.stringify(req)}: ${out.error}`);
      return out;
    },
    close: () => child.stdin.end(),
  };
}

/** The median of a non-empty list. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
