import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { readMtBenchQuestions } from '../data/index.js';
import { Generator } from '../generate/engine.js';
import { loadModel } from '../generate/load.js';
import { answerQuestions, type AnswerJob } from '../mtbench/answer.js';
import { addModelOptions, generationDevice, int, type ModelCliOptions } from './generate.js';

interface AnswerCliOptions extends ModelCliOptions {
  questions?: string;
  benchDir?: string;
  out?: string;
  lang?: string;
  modelId?: string;
  maxNewTokens: number;
  batch: number;
  seed: number;
  stop?: string[];
  maxLen?: number;
}

/** Every mt_bench_XX/question.jsonl under dir, each answered into mt_bench_XX/model_answer/NAME.jsonl. */
function benchJobs(dir: string, modelId: string): { questions: string; out: string; lang: string }[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--bench-dir ${dir}: not a folder`);
  const found = readdirSync(dir)
    .map((name) => ({ name, m: /^mt_bench_([A-Za-z]{2,3})$/.exec(name) }))
    .filter(({ name, m }) => m && existsSync(join(dir, name, 'question.jsonl')))
    .map(({ name, m }) => ({ questions: join(dir, name, 'question.jsonl'), out: join(dir, name, 'model_answer', `${modelId}.jsonl`), lang: m![1].toUpperCase() }));
  if (found.length === 0) throw new Error(`--bench-dir ${dir}: no mt_bench_XX/question.jsonl inside`);
  return found;
}

async function answerCommand(o: AnswerCliOptions): Promise<void> {
  if (!o.questions === !o.benchDir) throw new Error('mtbench answer: give exactly one of --questions and --bench-dir');
  if (o.benchDir && o.out) throw new Error('mtbench answer: --out goes with --questions; --bench-dir writes mt_bench_XX/model_answer/NAME.jsonl');
  const m = await loadModel(o.model, { dtype: o.dtype, template: o.template, device: generationDevice(o) });
  const modelId = o.modelId ?? m.name;
  if (!/^[\w.+-]+$/.test(modelId)) throw new Error(`--model-id "${modelId}": use letters, digits, '.', '_', '+' or '-' (it names the answer file)`);
  const specs = o.benchDir
    ? benchJobs(o.benchDir, modelId)
    : [{ questions: o.questions!, out: o.out ?? join(dirname(o.questions!), 'model_answer', `${modelId}.jsonl`), lang: o.lang?.toUpperCase() }];
  const jobs: AnswerJob[] = [];
  for (const s of specs) jobs.push({ questions: await readMtBenchQuestions(s.questions), out: s.out, lang: o.lang?.toUpperCase() ?? s.lang });
  // The context holds the longest second-turn prompt plus the answer; default max_position_embeddings, capped at 4096.
  const maxLen = Math.min(m.model.config.max_position_embeddings, o.maxLen ?? 4096);
  const gen = new Generator(m.model, m.tokenizer, { slots: o.batch, maxLen, eos: m.generation.eos });
  process.stderr.write(`${m.name}: answering ${jobs.map((j) => `${j.questions.length} questions -> ${j.out}`).join(', ')} ` +
    `(batch ${o.batch}, context ${maxLen}, KV cache ${(gen.decoder.cacheBytes / 2 ** 20).toFixed(0)} MiB)\n`);
  // Every finished answer is already fsynced: Ctrl-C simply ends the process; a rerun resumes.
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: stopped; finished answers are saved, rerun the same command to resume\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = new cliProgress.SingleBar(
    { format: 'answers |{bar}| {value}/{total} | {tps} tok/s | ETA {eta_formatted}', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  let started = false;
  try {
    const r = await answerQuestions(m, gen, jobs, {
      modelId,
      maxNewTokens: o.maxNewTokens,
      stop: o.stop,
      seed: o.seed,
      // As FastChat's model.generate(do_sample, temperature): the rest from generation_config.json,
      // else Hugging Face's defaults (top-k 50, top-p 1, no repetition penalty).
      sampling: { topK: m.generation.fileSampling.topK ?? 50, topP: m.generation.fileSampling.topP ?? 1, repetitionPenalty: m.generation.fileSampling.repetitionPenalty ?? 1 },
      concurrency: o.batch,
      onProgress: (p) => {
        const tps = (p.tokens / Math.max(1e-3, (performance.now() - t0) / 1000)).toFixed(1);
        if (!started) {
          bar.start(p.total, p.done, { tps });
          started = true;
        } else bar.update(p.done, { tps });
      },
    });
    bar.stop();
    process.stderr.write(`answered ${r.answered} questions (${r.skipped} already in the output)\n`);
  } finally {
    if (started) bar.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    gen.dispose();
    m.dispose();
  }
}

export function addMtbenchAnswer(mtbench: Command): void {
  const cmd = mtbench
    .command('answer')
    .description("Answer MT-Bench(-X) questions with FastChat's gen_model_answer semantics (resumable)");
  addModelOptions(cmd);
  cmd
    .option('--questions <file>', 'question.jsonl (MT-Bench or MT-Bench-X)')
    .option('--out <file>', 'answer file (default: model_answer/<model-id>.jsonl beside the questions)')
    .option('--bench-dir <dir>', 'answer every mt_bench_XX/question.jsonl under DIR into mt_bench_XX/model_answer/<model-id>.jsonl')
    .option('--lang <code>', 'language of the system message when question ids have no _XX suffix (default EN)')
    .option('--model-id <name>', 'model_id in the answers and the answer file name (default: the folder name; runs/x/checkpoints/checkpoint-900 gives x-checkpoint-900)')
    .option('--max-new-tokens <n>', 'tokens per answer at most', int('--max-new-tokens'), 1024)
    .option('--batch <n>', 'questions answered concurrently (batched decoding)', int('--batch'), 8)
    .option('--seed <s>', 'seed of the sampled categories (per question and turn)', int('--seed'), 0)
    .option('--stop <text...>', "stop strings, cut where found after the first character (FastChat's stop_str)")
    .addOption(new Option('--max-len <n>', 'KV-cache context per sequence (default: max_position_embeddings, at most 4096)').argParser(int('--max-len')))
    .action(async (opts: AnswerCliOptions) => answerCommand(opts));
}
