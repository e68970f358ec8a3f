/**
 * The page's own files, read into memory once at start-up from the built front
 * end (dist/web). A request is answered from that table or not at all: no
 * request path ever reaches the file system, so '..', encoded slashes and
 * similar tricks have nothing to escape from.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** One file of the page. */
export interface StaticFile {
  body: Buffer;
  type: string;
  /** Vite's hashed assets never change; everything else is revalidated. */
  immutable: boolean;
}

/** Where the built page is: dist/web under the package root (from src/serve or dist/serve alike). */
export function defaultWebRoot(): string {
  return fileURLToPath(new URL('../../dist/web/', import.meta.url));
}

/** The page's files by URL path ('/index.html', '/assets/index-abc123.js'). */
export class StaticFiles {
  private constructor(private readonly files: Map<string, StaticFile>) {}

  /** Reads every regular file under `root` (at most `maxFiles`, 256 by default). */
  static load(root: string, maxFiles = 256): StaticFiles {
    const files = new Map<string, StaticFile>();
    const walk = (dir: string, depth: number): void => {
      if (depth > 8) return;
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path, depth + 1);
        else if (entry.isFile()) {
          if (files.size >= maxFiles) throw new Error(`${root} holds more than ${maxFiles} files; is it the built page?`);
          const url = '/' + relative(root, path).split(sep).join('/');
          files.set(url, {
            body: readFileSync(path),
            type: TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
            immutable: url.startsWith('/assets/'),
          });
        }
      }
    };
    if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`the page is not built: ${root} does not exist (run 'npm run build:web')`);
    }
    walk(root, 0);
    if (!files.has('/index.html')) throw new Error(`the page is not built: ${join(root, 'index.html')} is missing (run 'npm run build:web')`);
    return new StaticFiles(files);
  }

  /** The URL paths served. */
  paths(): string[] {
    return [...this.files.keys()];
  }

  /**
   * The file for a URL path, matched exactly (no decoding, no normalisation);
   * '/' is '/index.html'. Undefined when there is none.
   */
  lookup(pathname: string): StaticFile | undefined {
    const p = pathname === '/' ? '/index.html' : pathname;
    return this.files.get(p);
  }
}
