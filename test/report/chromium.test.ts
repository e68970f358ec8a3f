/**
 * The report as a person sees it: opened in Debian's headless Chromium, no
 * console errors, every chart rendered with a non-empty size, a screenshot
 * kept in test-artifacts/report.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { buildReport, readAttackInput, readEvalInput, readSweepInput, readTransferInput } from '../../src/report/index.js';
import * as F from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-q'], { env });
  const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`could not install chromium: ${r.stderr}`);
}

test('the report opens in headless Chromium without errors and every chart is drawn', { timeout: 180_000 }, async () => {
  ensureChromium();
  const dir = mkdtempSync(join(tmpdir(), 'advml-report-chromium-'));
  const f = (n: string): string => join(dir, n);
  writeFileSync(f('plain.json'), JSON.stringify(F.plainEval()));
  writeFileSync(f('leaking.json'), JSON.stringify(F.leakingEval()));
  writeFileSync(f('transfer.json'), JSON.stringify({ cells: F.transferCells() }));
  writeFileSync(f('capacity.json'), JSON.stringify(F.capacitySweep()));
  F.writeAttackDir(f('attack'), 3);
  const out = f('report');
  await buildReport(
    {
      evals: [readEvalInput(f('plain.json')), readEvalInput(f('leaking.json'))],
      transfers: [readTransferInput(f('transfer.json'))],
      sweeps: [readSweepInput(f('capacity.json'))],
      attacks: [readAttackInput(f('attack'))],
    },
    out,
    { pngScale: 1 },
  );
  const browser = await chromium.launchPersistentContext(f('profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(pathToFileURL(join(out, 'index.html')).href);
    const charts = await page.locator('svg[role=img], figure img').evaluateAll((els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return { w: r.width, h: r.height, marks: e.querySelectorAll('path, rect, circle, line, text').length, tag: e.tagName };
      }),
    );
    assert.ok(charts.length >= 5, `only ${charts.length} charts on the page`);
    for (const c of charts) {
      assert.ok(c.w > 50 && c.h > 50, `a ${c.tag} chart is ${c.w}x${c.h}`);
      if (c.tag.toLowerCase() === 'svg') assert.ok(c.marks > 10, 'an SVG chart has almost no marks');
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
