/**
 * Public types of MT-Bench-X judging and analysis. Field names of the judgment and vote records
 * are FastChat's (snake_case) on purpose: they are the files' own fields, read and written as is,
 * so FastChat's show_result / compute_agreement read our files and we read theirs.
 */
import type { MtBenchAnswer, MtBenchQuestion } from '../data/mtBench.js';

export type { MtBenchAnswer, MtBenchQuestion };

export type QuestionId = number | string;

/** One judge prompt of judge_prompts.jsonl (FastChat's fields). */
export interface JudgePrompt {
  name: string;
  type: 'single' | 'pairwise';
  system_prompt: string;
  prompt_template: string;
  output_format: string;
  description?: string;
  category?: string;
  /** Where the record came from, for error messages (`file:line`). */
  source: string;
  /** True when the prompt offers the `[[D]]` "both bad" verdict (only then is [[D]] parsed). */
  offersBothBad: boolean;
}

/** `[judge_model, prompt_name]`, as FastChat writes it. */
export type JudgeId = [string, string];

/** A single-answer grading record of model_judgment/<judge>_single.jsonl. */
export interface SingleJudgment {
  question_id: QuestionId;
  model: string;
  judge: JudgeId;
  user_prompt: string;
  judgment: string;
  /** 1-10 as the judge wrote it (may be fractional); -1 when no score could be parsed. */
  score: number;
  turn: number;
  tstamp: number;
}

/**
 * A pairwise verdict after mapping A/B back to the models: FastChat's "model_1", "model_2", "tie",
 * "error", plus "tie (bothbad)" for the [[D]] verdict (the name FastChat's human judgments use).
 */
export type PairWinner = 'model_1' | 'model_2' | 'tie' | 'tie (bothbad)' | 'error';

/** A pairwise record of model_judgment/<judge>_pair.jsonl: g1 shows model_1 as A, g2 shows it as B. */
export interface PairJudgment {
  question_id: QuestionId;
  model_1: string;
  model_2: string;
  g1_winner: PairWinner;
  g2_winner: PairWinner;
  judge: JudgeId;
  g1_user_prompt: string;
  g1_judgment: string;
  g2_user_prompt: string;
  g2_judgment: string;
  turn: number;
  tstamp: number;
}

/** Everything of one language of a bench dir (`<benchDir>/mt_bench_<LANG>/`). */
export interface BenchLanguage {
  lang: string;
  /** The mt_bench_<LANG> folder. */
  dir: string;
  questions: MtBenchQuestion[];
  /** model name (answer file name without .jsonl) -> String(question_id) -> answer. */
  answers: Map<string, Map<string, MtBenchAnswer>>;
  /** reference_answer/gpt-4.jsonl keyed by String(question_id); empty when the file is absent. */
  references: Map<string, MtBenchAnswer>;
  /** All single / pairwise records of model_judgment/*.jsonl, in file order. */
  single: SingleJudgment[];
  pairwise: PairJudgment[];
}

// ---------------------------------------------------------------------------------------------
// summarizeResults: exactly what `mtbench show --json` prints.

/** A mean over valid scores; `invalid` counts the -1 scores (kept in the files, excluded here). */
export interface ScoreMean {
  mean: number | null;
  n: number;
  invalid: number;
}

/** Single-answer scores of one model; category "all" is the whole language. */
export interface SingleScoreRow {
  judge: string;
  lang: string;
  model: string;
  category: string;
  turn1: ScoreMean;
  turn2: ScoreMean;
  /** FastChat's average: the mean of all valid scores of both turns pooled (not the mean of the two means). */
  average: ScoreMean;
}

/**
 * Pairwise outcome counts of `model` against `opponent` ("all" = every opponent pooled, as
 * FastChat's show_result). A game is one question and turn judged in both orders:
 * win/loss/tie/bothBad when both orders agree, inconsistent when they disagree, errors when either
 * order has no verdict (errors are excluded from total, as in FastChat).
 */
export interface PairwiseRow {
  judge: string;
  lang: string;
  model: string;
  opponent: string;
  category: string;
  turn: 1 | 2 | 'all';
  win: number;
  loss: number;
  tie: number;
  bothBad: number;
  inconsistent: number;
  errors: number;
  /** win + loss + tie + bothBad + inconsistent. */
  total: number;
  /** win / total. */
  winRate: number | null;
  /** loss / total. */
  lossRate: number | null;
  /** (win + 0.5 (tie + inconsistent)) / total: FastChat's win_rate_adjusted, which counts an inconsistent game as a tie; both-bad earns nothing. */
  adjustedWinRate: number | null;
}

/** Position bias of the judge per category ("all" pools them): how often the two orders disagree. */
export interface PositionBiasRow {
  judge: string;
  lang: string;
  category: string;
  /** Games with a verdict in both orders. */
  games: number;
  consistent: number;
  inconsistent: number;
  /** Inconsistent games where both orders picked the answer shown first (A), whichever model it was. */
  biasedFirst: number;
  /** ... and shown second (B). */
  biasedSecond: number;
  /** Games where either order had no verdict (not in games). */
  errors: number;
  /** inconsistent / games. */
  inconsistentRate: number | null;
}

/** The study's comparison: each multilingual mixture against the monolingual model of each language. */
export interface MixtureComparisonRow {
  judge: string;
  mixture: string;
  /** Per language: the monolingual model, both average scores (all categories) and their difference. */
  perLang: { lang: string; monolingual: string; mixture: number | null; monolingualScore: number | null; delta: number | null }[];
  /** Mean of the per-language deltas over the languages where both have a score. */
  meanDelta: number | null;
  languages: number;
  /** Same, per category: category -> mean delta across languages. */
  perCategory: Record<string, number | null>;
}

export interface ResultsSummary {
  benchDir: string;
  languages: string[];
  /** Categories in question-file order of the first language. */
  categories: string[];
  judges: string[];
  models: string[];
  single: SingleScoreRow[];
  pairwise: PairwiseRow[];
  positionBias: PositionBiasRow[];
  /** The languages where a monolingual model was identified, and the mixtures against it; null when there is none in any language. */
  comparison: { monolingual: Record<string, string>; rows: MixtureComparisonRow[] } | null;
  /** The judgment files read. */
  files: string[];
}

export interface SummarizeOptions {
  /** Only this language (e.g. "DE"); default: every mt_bench_XX folder of benchDir. */
  lang?: string;
  /**
   * The monolingual model of each language as a template with {lang} or {LANG}
   * (e.g. "sft-{lang}"); default: the model whose name has exactly one language-code token
   * (split on - _ . /) and that is the bench language.
   */
  monolingual?: string;
}

// ---------------------------------------------------------------------------------------------
// Agreement.

export type VoteWinner = 'model_a' | 'model_b' | 'tie' | 'tie (bothbad)';

/** One vote of FastChat's human-judgment format (extra fields are kept and ignored). */
export interface Vote {
  question_id: QuestionId;
  model_a: string;
  model_b: string;
  winner: VoteWinner;
  /** A string ("expert_0", an anonymised annotator) is a human; a [model, prompt] pair is an LLM judge. */
  judge: string | JudgeId;
  turn: number;
  [extra: string]: unknown;
}

export interface AgreementCell {
  agree: number;
  total: number;
  ratio: number | null;
}

/** With ties: tie and both-bad votes count (equal to each other, as FastChat's equalvote); without: pairs with either vote a tie/both-bad are dropped. */
export interface AgreementPair {
  withTies: AgreementCell;
  withoutTies: AgreementCell;
}

export interface AgreementRow {
  turn: 1 | 2 | 'all';
  /** "all", a category, or "study subset" (roleplay, coding, extraction, math, reasoning). */
  scope: string;
  judgeHuman: AgreementPair | null;
  humanHuman: AgreementPair;
  /** Agreement of the human majority vote with the individual human votes: the best any judge could reach. */
  upperBound: AgreementPair;
}

export interface FleissResult {
  kappa: number | null;
  /** z = kappa / its standard error under kappa = 0 (Fleiss, Nee & Landis 1979). */
  z: number | null;
  /** Two-sided, from the normal distribution (as R's irr::kappam.fleiss). */
  pValue: number | null;
  items: number;
  raters: number;
  categories: string[];
  /** Why kappa is null (fewer than 2 raters, no item every rater voted on, one category only). */
  reason?: string;
}

export interface AgreementResult {
  rows: AgreementRow[];
  /** Over the human raters, for the items every one of them voted on; per turn and both turns. */
  fleiss: { turn: 1 | 2 | 'all'; result: FleissResult }[];
  counts: { humanVotes: number; humans: number; judgeVotes: number; judgeErrorsSkipped: number; items: number };
}

export interface AgreementOptions {
  /** String(question_id) -> category; default: MT-Bench's fixed layout (81-90 writing, ..., 151-160 humanities). */
  categories?: Map<string, string>;
  /** Fleiss' kappa over these annotators only (default: every human in the votes). */
  raters?: string[];
  /** Use the votes of this LLM judge model only (default: the one judge present; several are an error). */
  judge?: string;
}

// ---------------------------------------------------------------------------------------------
// Judging.

export interface JudgeRunOptions {
  benchDir: string;
  lang: string;
  mode: 'single' | 'pairwise';
  models: string[];
  /** Pairwise against this model (FastChat's pairwise-baseline); without it, all pairs. */
  baseline?: string;
  /** OpenAI-compatible base URL; default https://api.openai.com/v1. */
  judgeUrl?: string;
  /** Default "gpt-4". */
  judgeModel?: string;
  /** Default <lang dir>/judge_prompts.jsonl. */
  judgePrompts?: string;
  /** Default <lang dir>/reference_answer/gpt-4.jsonl. */
  referenceFile?: string;
  /** Default <lang dir>/model_judgment/<judgeModel>_single.jsonl or _pair.jsonl. */
  out?: string;
  /** Only the first N questions of question.jsonl (FastChat's --first-n, for a cheap trial run). */
  firstN?: number;
  /** Concurrent requests; default 1. */
  parallel?: number;
  /**
   * The key itself; default: the variable named by `apiKeyEnv`, or OPENAI_API_KEY when the judge is
   * api.openai.com (never sent elsewhere). Never written or logged.
   */
  apiKey?: string;
  /** Environment variable holding the key for a judge other than OpenAI's. */
  apiKeyEnv?: string;
  /** Per-request timeout; default 300 s. */
  timeoutMs?: number;
  /** Retries after the first attempt on 429, 5xx, timeouts and network errors; default 8. */
  maxRetries?: number;
  /** First backoff; doubles per retry (capped at 60 s) unless Retry-After says otherwise; default 1000. */
  retryBaseMs?: number;
  /** Show a progress bar on stderr; default: when stderr is a TTY. */
  progress?: boolean;
  /** Stops the run gracefully: no new judgments are started, those in flight are finished and written. */
  signal?: AbortSignal;
  /** Warnings (recovered inputs); default: stderr. */
  onWarning?: (message: string) => void;
}

export interface JudgeRunResult {
  outFile: string;
  /** Judgments the run had to produce (records: one per single grade, one per pairwise game). */
  planned: number;
  /** Already in the output file, skipped. */
  skipped: number;
  /** Written by this run. */
  written: number;
  /** Single grades of -1 written by this run. */
  invalidScores: number;
  /** Pairwise orders with an "error" verdict written by this run. */
  errorVerdicts: number;
  /** Requests that failed after all retries: nothing written for them; a rerun retries them. */
  failed: { key: string; error: string }[];
}
