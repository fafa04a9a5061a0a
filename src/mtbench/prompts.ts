import { readFile } from 'node:fs/promises';
import { DataFileError } from '../data/jsonRecords.js';
import type { JudgePrompt } from './types.js';

/** Categories judged against a reference answer (FastChat's NEED_REF_CATS). */
export const NEED_REF_CATS = ['math', 'reasoning', 'coding', 'arena-hard-200'];

/** Output formats FastChat knows; anything else is refused when the prompts are loaded, not mid-run. */
const FORMATS: Record<JudgePrompt['type'], string[]> = {
  single: ['[[rating]]'],
  pairwise: ['[[A]]', '[[rating_a,rating_b]]'],
};

function checkPrompt(r: Record<string, unknown>, file: string, line: number): JudgePrompt {
  for (const f of ['name', 'type', 'system_prompt', 'prompt_template', 'output_format']) {
    if (typeof r[f] !== 'string') throw new DataFileError(file, line, `judge prompt field "${f}" must be a string`);
  }
  const type = r.type as string;
  if (type !== 'single' && type !== 'pairwise') throw new DataFileError(file, line, `judge prompt "type" must be "single" or "pairwise", found ${JSON.stringify(type)}`);
  const fmt = r.output_format as string;
  if (!FORMATS[type].includes(fmt)) {
    throw new DataFileError(file, line, `judge prompt ${JSON.stringify(r.name)}: output_format ${JSON.stringify(fmt)} is not one of ${FORMATS[type].map((f) => JSON.stringify(f)).join(', ')}`);
  }
  const system = r.system_prompt as string, template = r.prompt_template as string;
  // A template error shows up here rather than after an hour of judging.
  formatPython(template, new Proxy({}, { get: () => '', has: () => true }), `${file}:${line}`);
  return {
    name: r.name as string,
    type,
    system_prompt: system,
    prompt_template: template,
    output_format: fmt,
    description: typeof r.description === 'string' ? r.description : undefined,
    category: typeof r.category === 'string' ? r.category : undefined,
    source: `${file}:${line}`,
    offersBothBad: type === 'pairwise' && (system + template).includes('[[D]]'),
  };
}

/**
 * Reads judge_prompts.jsonl (one JSON object per line), keyed by name.
 *
 * Recovery: a line whose JSON object is preceded by a few stray characters that are not JSON
 * (the German judge_prompts_v2.jsonl starts with `gewählt un{"name": ...`, the leftover of an edit)
 * is read from its first "{" when what follows is a complete, valid prompt record; the dropped
 * characters are reported through `warn` with file:line. Anything else that is not JSON is an error
 * naming file:line.
 */
export async function readJudgePrompts(file: string, warn: (msg: string) => void = () => {}): Promise<Map<string, JudgePrompt>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read the judge prompts: ${(e as Error).message}`);
  }
  const out = new Map<string, JudgePrompt>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/^\ufeff/, '').trim();
    if (raw === '') continue;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      const brace = raw.indexOf('{');
      const prefix = brace > 0 ? raw.slice(0, brace) : '';
      let recovered: unknown;
      if (brace > 0 && prefix.length <= 64 && !/[{}[\]"]/.test(prefix)) {
        try {
          recovered = JSON.parse(raw.slice(brace));
        } catch {
          recovered = undefined;
        }
      }
      if (recovered === undefined || typeof recovered !== 'object' || recovered === null || Array.isArray(recovered)) {
        throw new DataFileError(file, line, `not a JSON judge prompt record: ${(e as Error).message}`);
      }
      warn(`${file}:${line}: ignored ${prefix.length} stray characters ${JSON.stringify(prefix)} before the record`);
      value = recovered;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataFileError(file, line, 'a judge prompt must be a JSON object');
    const p = checkPrompt(value as Record<string, unknown>, file, line);
    if (out.has(p.name)) throw new DataFileError(file, line, `duplicate judge prompt name ${JSON.stringify(p.name)}`);
    out.set(p.name, p);
  }
  if (out.size === 0) throw new Error(`${file}: no judge prompts in the file`);
  return out;
}

/** FastChat's choice of prompt: reference-based for math/reasoning/coding, multi-turn for turn 2. */
export function promptName(mode: 'single' | 'pairwise', category: string, turn: number): string {
  const ref = NEED_REF_CATS.includes(category);
  const base = mode === 'single' ? (ref ? 'single-math-v1' : 'single-v1') : ref ? 'pair-math-v1' : 'pair-v2';
  return turn === 2 ? `${base}-multi-turn` : base;
}

/**
 * Python's str.format for named fields, as FastChat fills prompt_template: "{name}" is replaced,
 * "{{" and "}}" are literal braces, a field that is not given is an error (Python's KeyError);
 * values are inserted verbatim, never re-scanned.
 */
export function formatPython(template: string, vars: Record<string, string>, where: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '{') {
      if (template[i + 1] === '{') { out += '{'; i++; continue; }
      const end = template.indexOf('}', i);
      const name = end < 0 ? '' : template.slice(i + 1, end);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`${where}: prompt_template has an unsupported field "{${name}" at offset ${i} (write literal braces as {{ and }})`);
      if (!(name in vars)) throw new Error(`${where}: prompt_template needs {${name}}, which is not available for this prompt`);
      out += vars[name];
      i = end;
    } else if (c === '}') {
      if (template[i + 1] !== '}') throw new Error(`${where}: prompt_template has a single "}" at offset ${i} (write literal braces as {{ and }})`);
      out += '}';
      i++;
    } else out += c;
  }
  return out;
}
