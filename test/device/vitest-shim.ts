// The part of vitest's API the device tests use, for the GPU machine, which has Node.js (packed
// by ../shared/device/pack.sh) but no npm and no room for vitest's toolchain. `expect` is vitest's
// own (@vitest/expect on chai), so assertions mean exactly what they mean under vitest; only the
// collection and running of tests is re-done here, sequentially, in one process.
import { JestAsymmetricMatchers, JestChaiExpect, JestExtend, chai } from '@vitest/expect';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);
export const expect = chai.expect as unknown as (value: unknown, message?: string) => any;

type Fn = () => unknown;
export interface Entry {
  name: string;
  fn: Fn | null; // null: skipped
}
interface Suite {
  name: string;
  skip: boolean;
  entries: (Entry | Suite)[];
}
const root: Suite = { name: '', skip: false, entries: [] };
let current = root;

// vitest's title templates: $key (and $a.b) from an object row, %s %d %i %j %# from array or scalar rows.
function title(template: string, row: unknown, index: number): string {
  const args = Array.isArray(row) ? [...row] : [row];
  let t = template.replace(/\$([A-Za-z_][\w.]*)/g, (m, path: string) => {
    if (row === null || typeof row !== 'object') return m;
    let v: any = row;
    for (const k of path.split('.')) v = v?.[k];
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
  t = t.replace(/%[sdijo#%]/g, (m) => {
    if (m === '%%') return '%';
    if (m === '%#') return String(index);
    const v = args.shift();
    return m === '%j' || m === '%o' ? JSON.stringify(v) : String(v);
  });
  return t;
}

function addSuite(name: string, fn: Fn, skip: boolean): void {
  const s: Suite = { name, skip: skip || current.skip, entries: [] };
  current.entries.push(s);
  const parent = current;
  current = s;
  try {
    fn();
  } finally {
    current = parent;
  }
}
function addTest(name: string, fn: Fn, skip: boolean): void {
  current.entries.push({ name, fn: skip || current.skip ? null : fn });
}

type Each<F> = <T>(rows: readonly T[]) => (name: string, fn: (row: T) => unknown) => void;
function eachOf(add: (name: string, fn: Fn, skip: boolean) => void, skip: boolean): Each<unknown> {
  return (rows) => (name, fn) =>
    rows.forEach((row, i) => add(title(name, row, i), () => (Array.isArray(row) ? (fn as any)(...row) : fn(row)), skip));
}
function api(add: (name: string, fn: Fn, skip: boolean) => void) {
  const f = (name: string, fn: Fn) => add(name, fn, false);
  f.skip = (name: string, fn: Fn) => add(name, fn, true);
  f.each = eachOf(add, false);
  f.skipIf = (cond: unknown) => Object.assign((name: string, fn: Fn) => add(name, fn, !!cond), { each: eachOf(add, !!cond) });
  f.runIf = (cond: unknown) => f.skipIf(!cond);
  return f;
}
export const describe = api(addSuite);
export const it = api(addTest);
export const test = it;

export interface Result {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  ms: number;
  error?: string;
}

/** Runs everything collected so far, in order; `filter` keeps the tests whose full name matches. */
export async function runCollected(filter: RegExp | null, onResult: (r: Result) => void): Promise<Result[]> {
  const results: Result[] = [];
  const walk = async (s: Suite, prefix: string): Promise<void> => {
    for (const e of s.entries) {
      const name = prefix ? `${prefix} > ${e.name}` : e.name;
      if ('entries' in e) {
        await walk(e, name);
        continue;
      }
      if (filter && !filter.test(name)) continue;
      const t0 = performance.now();
      let r: Result;
      if (!e.fn) r = { name, status: 'skipped', ms: 0 };
      else {
        try {
          await e.fn();
          r = { name, status: 'passed', ms: performance.now() - t0 };
        } catch (err) {
          const msg = err instanceof Error ? `${err.message}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}` : String(err);
          r = { name, status: 'failed', ms: performance.now() - t0, error: msg };
        }
      }
      results.push(r);
      onResult(r);
    }
  };
  await walk(root, '');
  return results;
}
