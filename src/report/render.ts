/**
 * Headless rendering: a Vega-Lite spec is compiled with `vega-lite`, run by a
 * `vega` View with renderer 'none' and serialised with `toSVG()`; the SVG is
 * rasterised to PNG by resvg (`@resvg/resvg-js`, whose platform binary ships in
 * an npm package). Text in PNGs is set in DejaVu Sans from the npm package
 * `dejavu-fonts-ttf`, so PNGs look the same on machines without system fonts;
 * system fonts are used only when that package is missing.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { View, Warn, logger, parse } from 'vega';
import { type TopLevelSpec, compile } from 'vega-lite';
import { installTextMetrics } from './text-metrics.js';

/** Options of {@link renderSvg}. */
export interface SvgOptions {
  /**
   * Receives each warning of the Vega-Lite compiler and the Vega runtime (an
   * encoding dropped, a scale that cannot work). The library never prints:
   * without a handler, warnings are ignored.
   */
  onWarning?: (message: string) => void;
}

/**
 * Renders a Vega-Lite spec to an SVG document (width and height in CSS pixels,
 * white background). Errors of the compiler or the runtime throw.
 */
export async function renderSvg(spec: TopLevelSpec, opts: SvgOptions = {}): Promise<string> {
  const [regular, bold] = chartFontFiles();
  if (regular && bold) installTextMetrics(regular, bold);
  const log = logger(Warn, undefined, (_method, level, args) => {
    const text = args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
    if (level === 'ERROR') throw new Error(`chart: ${text}`);
    if (level === 'WARN') opts.onWarning?.(text);
  });
  const vega = compile(spec, { logger: log }).spec;
  const view = new View(parse(vega), { renderer: 'none', logger: log, logLevel: Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let fontFiles: string[] | undefined;

/**
 * The DejaVu Sans TTF files of the `dejavu-fonts-ttf` package (regular, bold,
 * oblique), or [] when it is not installed. Text is measured (for layout) and
 * drawn (in PNGs) with them.
 */
export function chartFontFiles(): string[] {
  if (fontFiles) return fontFiles;
  try {
    const require = createRequire(import.meta.url);
    const dir = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    const files = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf'].map((f) => join(dir, f));
    fontFiles = files.every((f) => existsSync(f)) ? files : [];
  } catch {
    fontFiles = [];
  }
  return fontFiles;
}

/** Options of {@link svgToPng}. */
export interface PngOptions {
  /** Pixels per SVG pixel (default 2, for sharp text on high-density screens and in print). */
  scale?: number;
}

/** Rasterises an SVG document to PNG bytes with resvg. */
export async function svgToPng(svg: string, opts: PngOptions = {}): Promise<Uint8Array> {
  const scale = opts.scale ?? 2;
  if (!(scale > 0 && scale <= 8)) throw new Error(`svgToPng: scale must be in (0, 8], got ${scale}`);
  const { Resvg } = await import('@resvg/resvg-js');
  const files = chartFontFiles();
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: files.length
      ? { loadSystemFonts: false, fontFiles: files, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' }
      : { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** Both renderings of one spec. */
export interface RenderedChart {
  svg: string;
  png: Uint8Array;
}

/** Renders a spec to SVG and that SVG to PNG. */
export async function renderChart(spec: TopLevelSpec, opts: PngOptions & SvgOptions = {}): Promise<RenderedChart> {
  const svg = await renderSvg(spec, opts);
  return { svg, png: await svgToPng(svg, opts) };
}
