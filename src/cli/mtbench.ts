import { Command, InvalidArgumentError } from 'commander';
import { readMtBenchQuestions } from '../data/mtBench.js';
import { computeAgreement, readJudgmentFile, readVotes, runJudge, summarizeResults } from '../mtbench/index.js';
import { formatAgreement, formatSummary } from '../mtbench/format.js';
import { DEFAULT_JUDGE_URL } from '../mtbench/judge.js';
import { addMtbenchAnnotate } from './mtbench-annotate.js';
import { addMtbenchAnswer } from './mtbench-answer.js';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected an integer >= 0');
  return n;
}

interface JudgeCliOptions {
  benchDir: string; lang: string; mode: string; models: string[]; baseline?: string; judgeUrl: string; apiKeyEnv?: string; judgeModel: string;
  judgePrompts?: string; reference?: string; out?: string; parallel: number; firstN?: number; timeout: number; retries: number; progress?: boolean;
}

function addJudge(mtbench: Command): void {
  mtbench
    .command('judge')
    .description('Judge answer files with an OpenAI-compatible LLM judge (FastChat llm_judge prompts, parsing and JSONL)')
    .requiredOption('--bench-dir <dir>', 'folder holding mt_bench_XX/')
    .requiredOption('--lang <XX>', 'benchmark language (mt_bench_XX)')
    .requiredOption('--mode <mode>', 'single (a 1-10 grade per answer) or pairwise (two answers compared, in both orders)')
    .requiredOption('--models <A,B,...>', 'models to judge: model_answer/<model>.jsonl', list)
    .option('--baseline <model>', 'pairwise: compare each model with this one only (default: all pairs)')
    .option('--judge-url <url>', 'OpenAI-compatible base URL (OPENAI_API_KEY is sent to api.openai.com only)', DEFAULT_JUDGE_URL)
    .option('--api-key-env <name>', "environment variable holding another endpoint's key (never sent over plain http off this machine)")
    .option('--judge-model <name>', 'judge model name (also names the output file)', 'gpt-4')
    .option('--judge-prompts <file>', 'judge prompts (default mt_bench_XX/judge_prompts.jsonl)')
    .option('--reference <file>', 'reference answers for math, reasoning, coding (default mt_bench_XX/reference_answer/gpt-4.jsonl)')
    .option('--out <file>', 'judgment file (default mt_bench_XX/model_judgment/<judge-model>_single.jsonl or _pair.jsonl)')
    .option('--parallel <n>', 'concurrent requests', positiveInt, 1)
    .option('--first-n <n>', 'only the first n questions (a cheap trial run)', positiveInt)
    .option('--timeout <s>', 'seconds to wait for one reply', positiveInt, 300)
    .option('--retries <n>', 'retries of a request on 429, 5xx, timeouts and network errors', nonNegativeInt, 8)
    .option('--no-progress', 'no progress bar')
    .action(async (o: JudgeCliOptions) => {
      if (o.mode !== 'single' && o.mode !== 'pairwise') throw new Error(`--mode must be single or pairwise, found ${JSON.stringify(o.mode)}`);
      // The first Ctrl-C lets the requests in flight finish and be written; a second one quits at once.
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        process.stderr.write('\nstopping after the judgments in flight (Ctrl-C again to quit now)\n');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const r = await runJudge({
        signal: stop.signal,
        benchDir: o.benchDir, lang: o.lang, mode: o.mode, models: o.models, baseline: o.baseline, judgeUrl: o.judgeUrl, apiKeyEnv: o.apiKeyEnv, judgeModel: o.judgeModel,
        judgePrompts: o.judgePrompts, referenceFile: o.reference, out: o.out, parallel: o.parallel, firstN: o.firstN, timeoutMs: o.timeout * 1000, maxRetries: o.retries,
        progress: o.progress === false ? false : undefined,
      }).finally(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      });
      process.stdout.write(
        `${r.outFile}: ${r.written} judgment(s) written, ${r.skipped} already there (of ${r.planned}); ` +
        `${o.mode === 'single' ? `${r.invalidScores} without a score (-1)` : `${r.errorVerdicts} order(s) without a verdict (error)`}\n`,
      );
      if (r.failed.length) {
        for (const f of r.failed.slice(0, 5)) process.stderr.write(`failed: ${f.key}: ${f.error}\n`);
        throw new Error(`${r.failed.length} judgment(s) failed after all retries; nothing was written for them: rerun the same command to judge them`);
      }
    });
}

function addShow(mtbench: Command): void {
  mtbench
    .command('show')
    .description('Scores, pairwise win rates, position bias and the mixture comparison from model_judgment/*.jsonl')
    .requiredOption('--bench-dir <dir>', 'folder holding mt_bench_XX/')
    .option('--lang <XX>', 'one language only (default: every mt_bench_XX)')
    .option('--monolingual <template>', 'name of the monolingual model of each language, e.g. "sft-{lang}" or "sft-{LANG}"')
    .option('--json', 'print the summary as JSON')
    .action(async (o: { benchDir: string; lang?: string; monolingual?: string; json?: boolean }) => {
      const s = await summarizeResults(o.benchDir, { lang: o.lang, monolingual: o.monolingual });
      process.stdout.write(o.json ? JSON.stringify(s, null, 2) + '\n' : formatSummary(s));
    });
}

function addAgreement(mtbench: Command): void {
  mtbench
    .command('agreement')
    .description('Agreement judge-human and human-human, its upper bound, and Fleiss\' kappa over the human raters')
    .requiredOption('--votes <file>', 'votes in FastChat\'s human-judgment format (JSON lines or a JSON array)')
    .option('--judgments <file>', 'an LLM judge\'s pairwise judgment JSONL (model_judgment/<judge>_pair.jsonl)')
    .option('--questions <file>', 'question.jsonl for the categories (default: MT-Bench\'s fixed layout of ids 81-160)')
    .option('--judge-model <name>', 'use this LLM judge only, when the votes or judgments hold several')
    .option('--raters <a,b,...>', 'annotators for Fleiss\' kappa (default: all; kappa uses the items every one of them voted on)', list)
    .option('--json', 'print the result as JSON')
    .action(async (o: { votes: string; judgments?: string; questions?: string; judgeModel?: string; raters?: string[]; json?: boolean }) => {
      const votes = await readVotes(o.votes);
      const judgments = o.judgments ? (await readJudgmentFile(o.judgments)).pairwise : [];
      const categories = o.questions ? new Map((await readMtBenchQuestions(o.questions)).map((q) => [String(q.questionId), q.category])) : undefined;
      const r = computeAgreement(votes, judgments, { categories, judge: o.judgeModel, raters: o.raters });
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatAgreement(r));
    });
}

/** `mtbench`: answer, judge, show, agreement, annotate. */
export function registerMtbench(program: Command): Command {
  const mtbench = program.command('mtbench').description('MT-Bench-X: answer questions, judge answers, show results, human annotation and agreement');
  addMtbenchAnswer(mtbench);
  addJudge(mtbench);
  addShow(mtbench);
  addAgreement(mtbench);
  addMtbenchAnnotate(mtbench);
  return mtbench;
}
