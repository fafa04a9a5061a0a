import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, SAMPLE_LANGUAGES, writeSample } from '../../src/data/index.js';
import { buildWordUnigramModel, SentencePieceTokenizer, writeModelProto } from '../../src/tokenizer/index.js';
import { gridVariants, loadGridSpec, runGrid, variantConfig, type GridResult } from '../../src/train/grid.js';
import type { ProgressReporter } from '../../src/train/progress.js';
import { tempDir } from '../data/helpers.js';
import { ensureBuilt, projectRoot } from '../helpers/build.js';

const polytune = (args: string[]) => spawnSync(process.execPath, [join(projectRoot, 'bin/polytune.js'), ...args], { cwd: dir, encoding: 'utf8' });

const tmp = tempDir();
afterAll(tmp.cleanup);
const dir = tmp.dir;
const NAMES = ['EN', 'DE', 'FR', 'IT', 'ES', 'ENDEFRITES', 'sampled'];

/** The bundled sample, a tokenizer built from it and a tiny model: the grid's whole study, small. */
async function writeStudy(): Promise<string> {
  const files = await writeSample(join(dir, 'data'), { items: 20 });
  const texts = SAMPLE_LANGUAGES.flatMap((l) => (JSON.parse(readFileSync(files[l], 'utf8')) as { instruction: string; output: string }[]).flatMap((r) => [r.instruction, r.output]));
  const spec = buildWordUnigramModel([...texts, 'System: User: Assistant:'], { vocabSize: 1024 });
  writeFileSync(join(dir, 'tokenizer.model'), writeModelProto(spec));
  mkdirSync(join(dir, 'model'));
  const preset = JSON.parse(readFileSync(join(__dirname, '../../models/tiny/config.json'), 'utf8'));
  writeFileSync(join(dir, 'model/config.json'), JSON.stringify({ ...preset, vocab_size: spec.pieces.length }));
  writeFileSync(join(dir, 'run.yaml'), [
    'model: model/config.json',
    'tokenizer: tokenizer.model',
    'data:',
    '  languages: [EN, DE, FR, IT, ES]',
    '  mixture: sampled            # each variant sets its own',
    '  files: data/{lang}.json',
    '  validation: { fraction: 0.1 }',
    '  maxSeqLen: 256',
    '  cacheDir: cache',
    'train: { epochs: 2, lr: 3.0e-3, globalBatch: 18, microBatch: 18 }',
    'out: runs/ignored              # each variant gets its own folder under the grid',
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'study.yaml'), 'run: run.yaml\nout: grid\n');
  return join(dir, 'study.yaml');
}

/** metrics.jsonl read here line by line, independently of the loop's reader. */
function validations(runDir: string): { step: number; epoch: number; validation: Record<string, number> }[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((o) => o.validation);
}

describe('polytune grid over the bundled sample', () => {
  let study: string;
  let first: GridResult;
  const lines: string[] = [];
  beforeAll(async () => {
    const complaints = ensureBuilt();
    if (complaints) console.warn(`tsc reported errors while building dist/:\n${complaints}`);
    study = await writeStudy();
    // Stop the DE variant right after its first step, as a Ctrl-C would: it saves and the grid ends.
    let running = '';
    let stop = false;
    const reporter: ProgressReporter = {
      log: (l) => lines.push(l),
      step: (p) => { if (running === 'DE' && p.step === 1) stop = true; },
      close() {},
    };
    first = await runGrid(loadGridSpec(study), {
      log: (l) => { lines.push(l); running = /^grid: (\w+) \(/.exec(l)?.[1] ?? running; },
      shouldStop: () => stop,
      train: { reporter },
    });
  });

  it('names the seven variants of five languages; mono ones train on one language but validate on all, like the others', async () => {
    expect(gridVariants([...SAMPLE_LANGUAGES]).map((v) => v.name)).toEqual(NAMES);
    const spec = loadGridSpec(study);
    const tok = SentencePieceTokenizer.load(join(dir, 'tokenizer.model'));
    const sets = await Promise.all(gridVariants([...SAMPLE_LANGUAGES]).map((v) => loadDataset(variantConfig(spec, v).data, { tokenizer: tok, tokenizerHash: 't' })));
    expect(new Set(sets[0].train.langs)).toEqual(new Set(['EN']));
    expect(sets[0].train.ids.length).toBe(18);
    expect(new Set(sets[4].train.langs)).toEqual(new Set(['ES']));
    expect(sets[5].train.ids.length).toBe(18 * 5);
    expect(new Set(sets[6].train.ids).size).toBe(18);
    for (const s of sets) {
      expect(s.validation.ids).toEqual(sets[0].validation.ids);
      expect(s.validation.langs).toEqual(sets[0].validation.langs);
    }
    expect(new Set(sets[0].validation.langs)).toEqual(new Set(SAMPLE_LANGUAGES));
  });

  it('a stop request ends the grid inside a variant, which saved; finished ones are kept', () => {
    expect(first.stopped).toBe(true);
    expect(first.variants.map((v) => v.status)).toEqual(['completed', 'interrupted', 'not started', 'not started', 'not started', 'not started', 'not started']);
    expect(existsSync(join(dir, 'grid/DE/checkpoints/latest'))).toBe(true);
    expect(readFileSync(join(dir, 'grid/grid.md'), 'utf8')).toContain('| DE |');
  });

  it('the rerun skips the finished variant, resumes the interrupted one and runs the rest; the table matches every run folder', async () => {
    const enMetrics = statSync(join(dir, 'grid/EN/metrics.jsonl')).mtimeMs;
    const r = await runGrid(loadGridSpec(study), { log: (l) => lines.push(l) });
    expect(r.stopped).toBe(false);
    expect(r.variants.map((v) => v.action)).toEqual(['skipped (finished)', 'resumed', 'trained', 'trained', 'trained', 'trained', 'trained']);
    expect(r.variants.every((v) => v.status === 'completed')).toBe(true);
    expect(statSync(join(dir, 'grid/EN/metrics.jsonl')).mtimeMs).toBe(enMetrics);
    expect(readFileSync(join(dir, 'grid/DE/metrics.jsonl'), 'utf8')).toMatch(/"event":"resume"/);

    const json = JSON.parse(readFileSync(r.files.json, 'utf8'));
    expect(json.columns).toEqual([...SAMPLE_LANGUAGES, 'all']);
    for (const [i, name] of NAMES.entries()) {
      const v = json.variants[i];
      expect(v.name).toBe(name);
      expect(v.dir).toBe(join(dir, 'grid', name));
      // The best of the run's own validations by "all", every language at that step.
      const vals = validations(v.dir);
      expect(vals.map((x) => x.epoch)).toEqual(name === 'DE' ? expect.arrayContaining([1, 2]) : [1, 2]);
      const best = vals.reduce((a, b) => (b.validation.all < a.validation.all ? b : a));
      expect(v.best.validation).toEqual(best.validation);
      expect(v.best.epoch).toBe(best.epoch);
      expect(Object.keys(v.best.validation).sort()).toEqual([...SAMPLE_LANGUAGES, 'all'].sort());
    }
    const md = readFileSync(r.files.markdown, 'utf8').split('\n');
    expect(md.filter((l) => /^\| (EN|DE|FR|IT|ES|ENDEFRITES|sampled) \|/.test(l))).toHaveLength(7);
    const en = json.variants[0].best.validation;
    expect(md.find((l) => l.startsWith('| EN |'))).toContain(en.DE.toFixed(4));
    const csv = readFileSync(r.files.csv, 'utf8').trim().split('\n');
    expect(csv[0]).toBe('variant,status,best_epoch,best_step,checkpoint,val_loss_EN,val_loss_DE,val_loss_FR,val_loss_IT,val_loss_ES,val_loss_all');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(NAMES);
    expect(Number(csv[1].split(',')[6])).toBe(en.DE);
    // The chart: a cell per variant and column, labelled with its loss.
    const svg = readFileSync(r.files.svg, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/aria-roledescription="rect mark"/g)).toHaveLength(7 * 6);
    expect(svg).toContain(`validated on: DE; trained on: EN; label: ${en.DE.toFixed(3)}"`);
  });

  it('a third run trains nothing', async () => {
    const r = await runGrid(loadGridSpec(study), { log: () => {} });
    expect(r.variants.map((v) => v.action)).toEqual(Array(7).fill('skipped (finished)'));
  });

  it('refuses to skip variants finished under other settings, naming each difference; result-neutral ones still skip', async () => {
    writeFileSync(join(dir, 'changed.yaml'), 'run: run.yaml\nout: grid\nvariants: [EN, DE]\nset: [train.lr=0.006, train.logEvery=3]\n');
    const err = await runGrid(loadGridSpec(join(dir, 'changed.yaml')), { log: () => {} }).then(() => null, (e: Error) => e.message);
    expect(err).toContain('2 variants finished under other settings');
    expect(err).toContain(`EN (${join(dir, 'grid/EN/summary.json')}), finished → now:\n    train.lr: 0.003 → 0.006`);
    expect(err).toContain(`DE (${join(dir, 'grid/DE/summary.json')})`);
    expect(err).not.toContain('logEvery');
    writeFileSync(join(dir, 'neutral.yaml'), 'run: run.yaml\nout: grid\nvariants: [EN]\nset: [train.logEvery=3]\n');
    const r = await runGrid(loadGridSpec(join(dir, 'neutral.yaml')), { log: () => {} });
    expect(r.variants.map((v) => v.action)).toEqual(['skipped (finished)']);
  });

  it('the CLI prints the table from the run folders and exits 0 when all is done', () => {
    const r = polytune(['grid', study]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'grid/grid.json'), 'utf8'));
    const table = r.stdout.split('\n').filter((l) => /^(variant|EN|DE|FR|IT|ES|ENDEFRITES|sampled) /.test(l));
    expect(table).toHaveLength(8);
    expect(table[0].split(/\s+/)).toEqual(['variant', 'EN', 'DE', 'FR', 'IT', 'ES', 'all', 'epoch', 'status']);
    for (const [i, v] of json.variants.entries()) {
      expect(table[i + 1].split(/\s+/)).toEqual([v.name, ...json.columns.map((c: string) => v.best.validation[c].toFixed(4)), String(v.best.epoch), 'completed']);
    }
    expect(r.stdout).toContain(`table ${join(dir, 'grid/grid.md')}`);
  });

  it('the CLI: --dry-run trains nothing; Ctrl-C stops inside a variant with 130 after it saved; the same command resumes it', async () => {
    writeFileSync(join(dir, 'sig.yaml'), 'run: run.yaml\nout: grid-sig\nvariants: [FR]\nset: [train.globalBatch=6, train.microBatch=6]\n');
    const dry = polytune(['grid', join(dir, 'sig.yaml'), '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain(`grid: FR (1/1): FR only; would be training in ${join(dir, 'grid-sig/FR')}`);
    expect(existsSync(join(dir, 'grid-sig'))).toBe(false);

    const child = spawn(process.execPath, [join(projectRoot, 'bin/polytune.js'), 'grid', join(dir, 'sig.yaml')], { cwd: dir });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d) => {
        out += d;
        // Interrupt once the first step is reported (with the study's `set`, the run has 6).
        if (/step 1\/6/.test(out) && !child.killed) child.kill('SIGINT');
      });
      child.on('close', (c) => resolve(c)); // after the pipes drain, so err and out are whole
    });
    expect(err, `stdout:\n${out}\nstderr:\n${err}\nexit ${code}`).toMatch(/SIGINT: finishing step \d\/6, then saving/);
    expect(code).toBe(130);
    expect(JSON.parse(readFileSync(join(dir, 'grid-sig/FR/summary.json'), 'utf8')).status).toBe('interrupted');
    expect(existsSync(join(dir, 'grid-sig/FR/checkpoints/latest'))).toBe(true);
    const again = polytune(['grid', join(dir, 'sig.yaml')]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('resuming in');
    expect(JSON.parse(readFileSync(join(dir, 'grid-sig/grid.json'), 'utf8')).variants[0]).toMatchObject({ name: 'FR', status: 'completed', action: 'resumed', totalSteps: 6 });
  });

  it('refuses an unknown variant or setting by name before training anything', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'run: run.yaml\nvariants: [EN, PL]\n');
    return expect(runGrid(loadGridSpec(join(dir, 'bad.yaml')), { log: () => {} })).rejects.toThrow('bad.yaml: field "variants" names "PL", which is not a variant of EN, DE, FR, IT, ES (known: EN, DE, FR, IT, ES, ENDEFRITES, sampled)');
  });

  it('refuses a study file with a misspelt field', () => {
    writeFileSync(join(dir, 'typo.yaml'), 'run: run.yaml\nvariant: [EN]\n');
    expect(() => loadGridSpec(join(dir, 'typo.yaml'))).toThrow('typo.yaml: field "variant" not a grid setting (known: run, out, variants, set)');
  });
});
