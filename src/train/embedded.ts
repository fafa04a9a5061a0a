import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SAMPLE_LANGUAGES, writeSample } from '../data/index.js';
import { packageRoot } from '../tensor/root.js';
import { writeFileIfChanged } from '../util/durable.js';
import { buildWordUnigramModel, writeModelProto } from '../tokenizer/index.js';
import { parseRunConfig, type RunConfig } from './config.js';
import { applyOverrides } from './overrides.js';

/**
 * The run `node train.js` does with no config: everything it needs is generated into `out`, so it
 * works on a fresh clone with no downloads. The bundled parallel sample in all five languages
 * (ENDEFRITES mixture), a word-unigram tokenizer built from it, and the `tiny` preset trained from
 * scratch; hence a learning rate far above the study's 1e-5, which is for fine-tuning a 7B model.
 */
export const EMBEDDED_SOURCE = 'embedded default';

/**
 * Generates the demo's inputs into `out` and returns its run config (before the run takes the
 * folder's lock, so each file is replaced atomically and only when its bytes differ: a second
 * `node train.js` started beside a running one rewrites nothing under it, then meets the lock); `overrides` are `--set`
 * strings applied as to a config file (`train.epochs=2`).
 */
export async function embeddedDefault(out = 'runs/default', opts: { items?: number; overrides?: string[] } = {}): Promise<RunConfig> {
  const dir = resolve(out);
  const files = await writeSample(join(dir, 'data'), { items: opts.items });
  const texts: string[] = [];
  for (const lang of SAMPLE_LANGUAGES) {
    for (const r of JSON.parse(readFileSync(files[lang], 'utf8')) as { instruction: string; input: string; output: string }[]) {
      texts.push(r.instruction, r.input, r.output);
    }
  }
  const tokenizer = join(dir, 'tokenizer.model');
  const spec = buildWordUnigramModel([...texts, 'System: User: Assistant:'], { vocabSize: 1024 });
  writeFileIfChanged(tokenizer, writeModelProto(spec));
  const modelDir = join(dir, 'model');
  mkdirSync(modelDir, { recursive: true });
  const preset = JSON.parse(readFileSync(join(packageRoot(), 'models', 'tiny', 'config.json'), 'utf8'));
  writeFileIfChanged(join(modelDir, 'config.json'), JSON.stringify({ ...preset, vocab_size: spec.pieces.length, pad_token_id: 3 }, null, 2) + '\n');
  const raw = {
    model: join(modelDir, 'config.json'),
    tokenizer,
    data: {
      languages: [...SAMPLE_LANGUAGES],
      mixture: 'all',
      files: join(dir, 'data', '{lang}.json'),
      format: 'bactrian',
      validation: { fraction: 0.1 },
      template: 'teuken',
      maxSeqLen: 256,
      cacheDir: join(dir, 'cache'),
    },
    train: { epochs: 8, lr: 3e-3, warmupSteps: 5, microBatch: 16 },
    out: dir,
  };
  const where = EMBEDDED_SOURCE;
  return parseRunConfig(applyOverrides(raw, opts.overrides ?? [], { where, cwd: process.cwd(), baseDir: dir }), { baseDir: dir, where });
}
