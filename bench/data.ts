import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TeukenTemplate, tokenizeFile, type TextTokenizer } from '../src/data/index.js';
import { seededRandom } from '../src/data/random.js';
import { printTable, writeReport } from './report.js';
import type { BenchSuite } from './types.js';

const LANGS = ['EN', 'DE', 'FR', 'IT', 'ES'];
const WORDS: Record<string, string[]> = {
  EN: 'the a story about water light house people time world small great answer question because which would could write explain'.split(' '),
  DE: 'der die das eine Geschichte über Wasser Licht Haus Menschen Zeit Welt klein groß Antwort Frage weil welche würde könnte'.split(' '),
  FR: 'le la une histoire sur eau lumière maison gens temps monde petit grand réponse question parce que laquelle pourrait écrire'.split(' '),
  IT: 'il la una storia su acqua luce casa persone tempo mondo piccolo grande risposta domanda perché quale potrebbe scrivere'.split(' '),
  ES: 'el la una historia sobre agua luz casa gente tiempo mundo pequeño grande respuesta pregunta porque cual podría escribir'.split(' '),
};

/** Text of Bactrian-X-like size: instruction ~12 words, input in 40% of items, output ~60-180 words. */
function writeSynthetic(dir: string, perLang: number): string[] {
  return LANGS.map((lang) => {
    const rand = seededRandom(`bench-data:${lang}`);
    const words = WORDS[lang];
    const text = (n: number) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' ');
    const recs = Array.from({ length: perLang }, (_, i) => ({
      instruction: text(6 + Math.floor(rand() * 12)) + '?',
      input: rand() < 0.4 ? text(10 + Math.floor(rand() * 30)) : '',
      output: text(60 + Math.floor(rand() * 120)) + '.',
      id: `bench-${i}`,
    }));
    const path = join(dir, `${lang}.json`);
    writeFileSync(path, JSON.stringify(recs, null, 1));
    return path;
  });
}

async function loadTokenizer(): Promise<{ tokenizer: TextTokenizer; name: string }> {
  const model = resolve('../shared/data/stories260k/tok512.model');
  if (!existsSync(model)) throw new Error(`bench data: needs the real tokenizer model at ${model}`);
  const { SentencePieceTokenizer } = await import('../src/tokenizer/index.js');
  return { tokenizer: SentencePieceTokenizer.load(model), name: 'SentencePieceTokenizer (src/tokenizer) on stories260k tok512.model (BPE, 512 pieces)' };
}

export const run: BenchSuite = async (opts) => {
  const total = opts.quick ? 5_000 : 335_000;
  const perLang = total / LANGS.length;
  const work = mkdtempSync(join(tmpdir(), 'polytune-bench-data-'));
  try {
    const files = writeSynthetic(work, perLang);
    const { tokenizer, name } = await loadTokenizer();
    const template = new TeukenTemplate();
    const cacheDir = join(work, 'cache');
    const pass = async () => {
      const t0 = performance.now();
      let examples = 0, tokens = 0;
      const status = new Set<string>();
      for (const [k, file] of files.entries()) {
        const r = await tokenizeFile({ file, lang: LANGS[k], format: 'bactrian', tokenizer, tokenizerHash: 'bench', template, cacheDir });
        examples += r.set.ids.length;
        tokens += r.set.tokens.length;
        status.add(r.cache.status);
      }
      const s = (performance.now() - t0) / 1000;
      return { seconds: s, examples, tokens, examplesPerSec: examples / s, tokensPerSec: tokens / s, cache: [...status].join(',') };
    };
    const cold = await pass();
    const warm = await pass();
    const rows = [
      { run: 'tokenize + write cache', ...cold },
      { run: 'from cache', ...warm },
    ];
    printTable(rows.map((r) => ({ run: r.run, cache: r.cache, examples: r.examples, tokens: r.tokens, seconds: r.seconds, 'examples/s': r.examplesPerSec, 'tokens/s': r.tokensPerSec })));
    const speedup = cold.seconds / warm.seconds;
    console.log(`cached rerun is ${speedup.toFixed(1)}x faster (target >= 10x); tokenizer: ${name}`);
    const path = writeReport('data', opts.out, { quick: opts.quick, tokenizer: name, template: 'teuken', cold, warm, speedup });
    console.log(`report: ${path}`);
    return { cold, warm, speedup };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};
