// Small HTML helpers: everything the report prints from input files passes through esc().

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON for a <script type="application/json"> block: nothing in it can close the tag. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export type Cell = string | number | null | undefined | { html: string };

function cell(c: Cell, tag: 'td' | 'th'): string {
  if (c !== null && typeof c === 'object') return `<${tag}>${c.html}</${tag}>`;
  const num = typeof c === 'number';
  return `<${tag}${num ? ' class="num"' : ''}>${c === null || c === undefined ? '–' : esc(c)}</${tag}>`;
}

export function table(head: string[], rows: Cell[][], attrs = ''): string {
  return `<table${attrs ? ' ' + attrs : ''}><thead><tr>${head.map((h) => cell(h, 'th')).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => cell(c, 'td')).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export const fixed = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : x.toFixed(digits));
export const pct = (x: number | null | undefined) => (x === null || x === undefined ? null : `${(100 * x).toFixed(1)}%`);
