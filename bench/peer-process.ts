/** The PyTorch peer (bench/peer.py) as a child process answering JSON requests. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The PyTorch process: one JSON request per line, one answer per line. */
export function startPeer(python = '/usr/bin/python3'): { ask: (req: object) => Promise<{ imagesPerSec: number }>; close: () => void; version: Promise<string> } {
  const script = fileURLToPath(new URL('./peer.py', import.meta.url));
  const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
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
  const version = next().then((l) => (JSON.parse(l) as { torch: string }).torch);
  return {
    version,
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
