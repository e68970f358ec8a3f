/**
 * Progress for long commands: a bar redrawn in place on a terminal, JSON lines
 * on stderr otherwise (so logs and CI keep a record without control codes).
 */
export interface Progress {
  update: (done: number, total: number, extra?: Record<string, number | string>) => void;
  done: () => void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const start = Date.now();
  let last = 0;
  const tty = stream.isTTY === true;
  return {
    update(done, total, extra = {}) {
      const now = Date.now();
      if (now - last < (tty ? 100 : 5000) && done < total) return;
      last = now;
      const elapsed = (now - start) / 1000;
      const eta = done > 0 ? (elapsed * (total - done)) / done : NaN;
      if (tty) {
        const width = 30;
        const filled = Math.round((width * done) / Math.max(total, 1));
        const fields = Object.entries(extra).map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : v}`).join('  ');
        stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${fields}  eta ${Number.isFinite(eta) ? eta.toFixed(0) : '?'}s\x1b[K`);
      } else {
        stream.write(JSON.stringify({ event: label, done, total, elapsed: +elapsed.toFixed(1), eta: Number.isFinite(eta) ? +eta.toFixed(1) : null, ...extra }) + '\n');
      }
    },
    done() {
      if (tty) stream.write('\n');
    },
  };
}
