/**
 * The HTML page of a report: one self-contained document (inline CSS, inline
 * SVG charts whose images are data URIs) with no reference to any other
 * address, so it can be mailed, archived or opened offline.
 */

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/**
 * Prepares a standalone SVG document for inline use in HTML: drops the XML
 * namespace declarations (the HTML parser supplies them), prefixes every `id`
 * and its references with `prefix` (so the clip paths and gradients of two
 * charts on one page cannot collide), and labels the root for screen readers.
 */
export function inlineSvg(svg: string, prefix: string, label: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1] as string);
  let out = svg.replace(/\s+xmlns(:xlink)?="[^"]*"/g, '').replace(/^<\?xml[^>]*>\s*/, '');
  if (ids.size) {
    out = out
      .replace(/(\sid=")([^"]+)"/g, (_, a: string, id: string) => `${a}${prefix}-${id}"`)
      .replace(/url\(#([^)]+)\)/g, (m, id: string) => (ids.has(id) ? `url(#${prefix}-${id})` : m))
      .replace(/((?:xlink:)?href=")#([^"]+)"/g, (m, a: string, id: string) => (ids.has(id) ? `${a}#${prefix}-${id}"` : m));
  }
  return out.replace(/^<svg\b/, `<svg role="img" aria-label="${escapeHtml(label)}"`);
}

/** A table: header cells, body rows of cells (HTML), optional class per row. */
export interface HtmlTable {
  headers: string[];
  rows: string[][];
  rowClasses?: (string | undefined)[];
  /** Columns (by index) that hold numbers: right-aligned. */
  numeric?: number[];
  caption?: string;
}

/** Renders a {@link HtmlTable}; cells are HTML and must be escaped by the caller. */
export function htmlTable(t: HtmlTable): string {
  const num = new Set(t.numeric ?? []);
  const cls = (i: number): string => (num.has(i) ? ' class="num"' : '');
  const head = t.headers.map((h, i) => `<th${cls(i)}>${h}</th>`).join('');
  const body = t.rows
    .map((r, j) => {
      const rc = t.rowClasses?.[j];
      return `<tr${rc ? ` class="${rc}"` : ''}>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join('')}</tr>`;
    })
    .join('\n');
  return `<div class="table-wrap"><table>${t.caption ? `<caption>${t.caption}</caption>` : ''}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table></div>`;
}

/** One figure on the page. */
export interface HtmlFigure {
  id: string;
  title: string;
  /** The chart as inline SVG (already passed through {@link inlineSvg}). */
  svg: string;
  /** The PNG file beside the page, linked for download. */
  png: string;
  /** Explanation under the figure (HTML). */
  caption: string;
}

/** A section of the page: heading, introduction (HTML), then blocks (HTML: figures, tables, headings). */
export interface HtmlSection {
  id: string;
  title: string;
  intro: string;
  blocks: string[];
}

/** Renders a figure block. */
export function htmlFigure(f: HtmlFigure): string {
  return `<figure id="${escapeHtml(f.id)}">
<div class="chart">${f.svg}</div>
<figcaption>${f.caption} <a class="png" href="${encodeURI(f.png)}" download>PNG</a></figcaption>
</figure>`;
}

const CSS = `
:root { --fg: #1d1d1f; --muted: #5a5a60; --line: #dedee3; --bg-alt: #f6f7f9; --leak: #b3261e; --accent: #2f5d8a; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 1.9rem; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 1.45rem; margin: 48px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 1.15rem; margin: 32px 0 8px; }
p, li { max-width: 78ch; }
.meta { color: var(--muted); font-size: 0.92rem; margin: 4px 0; }
nav ol { padding-left: 1.2em; margin: 8px 0 0; }
nav a, a { color: var(--accent); }
code { font: 0.9em/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; background: var(--bg-alt); padding: 1px 4px; border-radius: 3px; }
figure { margin: 18px 0 26px; }
.chart { overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.92rem; margin-top: 6px; max-width: 90ch; }
a.png { font-size: 0.85rem; margin-left: 6px; }
.table-wrap { overflow-x: auto; margin: 10px 0 20px; }
table { border-collapse: collapse; font-size: 0.9rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); padding-bottom: 6px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--bg-alt); font-weight: 600; }
td.num, th.num { text-align: right; }
tr.clean td { font-weight: 600; background: #fbfbfc; }
tr.leak td, tr.fired td { background: #fdecea; }
.badge { display: inline-block; font-size: 0.75rem; font-weight: 600; padding: 1px 6px; border-radius: 9px; margin-right: 4px; }
.badge.leak { background: var(--leak); color: #fff; }
.badge.tied { background: #e3ecf6; color: var(--accent); }
.note { background: var(--bg-alt); border-left: 4px solid var(--accent); padding: 10px 14px; margin: 12px 0; max-width: 90ch; }
.note.leak { border-left-color: var(--leak); }
.note p { margin: 0; }
.ci { color: var(--muted); font-size: 0.8em; font-weight: normal; line-height: 1.2; }
td { vertical-align: top; }
details { margin: 8px 0 20px; }
summary { cursor: pointer; color: var(--accent); }
@media print { h2 { break-before: page; } figure { break-inside: avoid; } }
`;

/** The whole page. */
export interface HtmlPage {
  title: string;
  /** Lines under the title (HTML). */
  meta: string[];
  sections: HtmlSection[];
}

/** Renders the page as one HTML document. */
export function htmlPage(page: HtmlPage): string {
  const nav = page.sections.length > 1 ? `<nav aria-label="Contents"><ol>${page.sections.map((s) => `<li><a href="#${s.id}">${escapeHtml(s.title)}</a></li>`).join('')}</ol></nav>` : '';
  const sections = page.sections
    .map((s) => `<section id="${s.id}">\n<h2>${escapeHtml(s.title)}</h2>\n${s.intro}\n${s.blocks.join('\n')}\n</section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(page.title)}</h1>
${page.meta.map((m) => `<p class="meta">${m}</p>`).join('\n')}
${nav}
</header>
${sections}
</main>
</body>
</html>
`;
}
