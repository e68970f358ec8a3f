/**
 * Text widths for headless Vega. Without a canvas, Vega estimates a string as
 * 0.8 x font size per character, far wider than real text: long titles widen
 * the charts with empty space and legend labels are cut short. Vega lets a
 * program supply its own measure (`textMetrics.width`, as vl-convert does);
 * this module measures with the advance widths of the very fonts resvg draws
 * with (DejaVu Sans and its bold), read from their TrueType `cmap` and `hmtx`
 * tables. Kerning is ignored (a fraction of a percent for chart text).
 */
import { readFileSync } from 'node:fs';
import * as vega from 'vega';

/** Advance widths of one font, in em, by Unicode code point. */
export interface FontAdvances {
  /** Advance of a code point in em (the font's missing-glyph advance when it has none). */
  advance(codePoint: number): number;
  /** Width of a string in em. */
  width(text: string): number;
}

/**
 * Reads the advance widths of a TrueType/OpenType font with a format-4 `cmap`
 * subtable (Unicode BMP): `head.unitsPerEm`, `hhea.numberOfHMetrics`, `hmtx`.
 * Throws naming `source` when a table is missing.
 */
export function parseFontAdvances(bytes: Uint8Array, source = 'font'): FontAdvances {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tables = new Map<string, number>();
  const numTables = view.getUint16(4);
  for (let i = 0; i < numTables; i++) {
    const rec = 12 + 16 * i;
    const tag = String.fromCharCode(bytes[rec] as number, bytes[rec + 1] as number, bytes[rec + 2] as number, bytes[rec + 3] as number);
    tables.set(tag, view.getUint32(rec + 8));
  }
  const table = (tag: string): number => {
    const at = tables.get(tag);
    if (at === undefined) throw new Error(`${source}: no '${tag}' table`);
    return at;
  };
  const unitsPerEm = view.getUint16(table('head') + 18);
  const numberOfHMetrics = view.getUint16(table('hhea') + 34);
  const hmtx = table('hmtx');
  const glyphAdvance = (glyph: number): number => view.getUint16(hmtx + 4 * Math.min(glyph, numberOfHMetrics - 1)) / unitsPerEm;

  const cmap = table('cmap');
  let sub = -1;
  const numSub = view.getUint16(cmap + 2);
  for (let i = 0; i < numSub; i++) {
    const platform = view.getUint16(cmap + 4 + 8 * i);
    const encoding = view.getUint16(cmap + 6 + 8 * i);
    const offset = cmap + view.getUint32(cmap + 8 + 8 * i);
    if (((platform === 3 && encoding === 1) || (platform === 0 && encoding <= 3)) && view.getUint16(offset) === 4) {
      sub = offset;
      break;
    }
  }
  if (sub < 0) throw new Error(`${source}: no Unicode BMP (format 4) cmap subtable`);
  const segCount = view.getUint16(sub + 6) / 2;
  const ends = sub + 14;
  const starts = ends + 2 * segCount + 2;
  const deltas = starts + 2 * segCount;
  const rangeOffsets = deltas + 2 * segCount;
  const glyphOf = (c: number): number => {
    for (let i = 0; i < segCount; i++) {
      if (c > view.getUint16(ends + 2 * i)) continue;
      const start = view.getUint16(starts + 2 * i);
      if (c < start) return 0;
      const delta = view.getUint16(deltas + 2 * i);
      const ro = view.getUint16(rangeOffsets + 2 * i);
      if (ro === 0) return (c + delta) & 0xffff;
      const g = view.getUint16(rangeOffsets + 2 * i + ro + 2 * (c - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };
  const cache = new Map<number, number>();
  const advance = (c: number): number => {
    let a = cache.get(c);
    if (a === undefined) {
      a = glyphAdvance(c > 0xffff ? 0 : glyphOf(c));
      cache.set(c, a);
    }
    return a;
  };
  return {
    advance,
    width(text) {
      let w = 0;
      for (const ch of text) w += advance(ch.codePointAt(0) as number);
      return w;
    },
  };
}

/** The fields of a Vega text item that widths depend on. */
interface TextItem {
  text?: unknown;
  fontSize?: number | string;
  fontWeight?: number | string;
}

type WidthFunction = (item: TextItem, text?: unknown) => number;

let installed = false;

/**
 * Makes headless Vega measure text with the fonts at `regular` and `bold`
 * (TTF paths). Idempotent; returns false, leaving Vega's estimate in place,
 * when a font cannot be read. Affects every Vega view in this process.
 */
export function installTextMetrics(regular: string, bold: string): boolean {
  if (installed) return true;
  let fonts: { regular: FontAdvances; bold: FontAdvances };
  try {
    fonts = { regular: parseFontAdvances(readFileSync(regular), regular), bold: parseFontAdvances(readFileSync(bold), bold) };
  } catch {
    return false;
  }
  const metrics = (vega as unknown as { textMetrics: { width: WidthFunction } }).textMetrics;
  const measure = (item: TextItem, s: string): number => {
    const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
    const w = item.fontWeight;
    const isBold = w === 'bold' || w === 'bolder' || (typeof w === 'number' && w >= 600) || (typeof w === 'string' && Number(w) >= 600);
    return (isBold ? fonts.bold : fonts.regular).width(s) * size;
  };
  // Vega calls this both for bounds and, inside its own truncation to `limit`,
  // for prefixes of a string: so it returns the untruncated width, as
  // vl-convert's measure does (bounds of a truncated label come out a little wide).
  metrics.width = (item, text) => measure(item, text == null ? '' : String(text).trim());
  installed = true;
  return true;
}
