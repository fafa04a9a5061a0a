// `--set train.lr=2e-5`: command-line changes to a config, applied to the raw object before it is
// checked, so an override gets the same messages as the file.
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** Settings holding paths: given on the command line they are relative to where it was typed. */
const PATH_KEYS = new Set(['model', 'tokenizer', 'out', 'data.cacheDir', 'data.files', 'data.validation.file']);

/** Splits `a.b.c=value` and reads the value as YAML (`2e-5` a number, `true` a boolean, `[EN, DE]` a list). */
export function parseOverride(spec: string, where = '--set'): { path: string[]; value: unknown } {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`${where} ${JSON.stringify(spec)}: expected key.path=value, e.g. train.lr=2e-5`);
  const key = spec.slice(0, eq).trim();
  const path = key.split('.');
  if (path.some((p) => p === '')) throw new Error(`${where} ${JSON.stringify(spec)}: "${key}" is not a key path like train.lr`);
  const text = spec.slice(eq + 1);
  let value: unknown;
  try {
    value = text.trim() === '' ? '' : parseYaml(text);
  } catch (e) {
    throw new Error(`${where} ${key}: cannot read the value ${JSON.stringify(text)}: ${(e as Error).message}`);
  }
  return { path, value };
}

/** A copy of `raw` with each override set (missing objects on the way are created). */
export function applyOverrides(raw: unknown, overrides: readonly string[], opts: { where: string; cwd: string; baseDir: string }): unknown {
  if (overrides.length === 0) return raw;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw; // the schema names the problem
  const root = structuredClone(raw) as Record<string, unknown>;
  for (const spec of overrides) {
    const { path, value } = parseOverride(spec);
    const key = path.join('.');
    let v = value;
    if (PATH_KEYS.has(key) && typeof v === 'string' && v !== '' && !isAbsolute(v) && (key !== 'model' || /[/\\.]/.test(v))) v = resolve(opts.cwd, v);
    let node = root;
    for (let i = 0; i < path.length - 1; i++) {
      const next = node[path[i]];
      if (next === undefined || next === null) node[path[i]] = {};
      else if (typeof next !== 'object' || Array.isArray(next)) {
        throw new Error(`--set ${key}: "${path.slice(0, i + 1).join('.')}" in ${opts.where} is ${JSON.stringify(next)}, not an object of settings`);
      }
      node = node[path[i]] as Record<string, unknown>;
    }
    node[path[path.length - 1]] = v;
  }
  return root;
}
