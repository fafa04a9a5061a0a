import type { JudgePrompt } from './types.js';

// FastChat's patterns (common.py), searched in this order; the first match wins.
const ONE_SCORE = /\[\[(\d+\.?\d*)\]\]/;
const ONE_SCORE_BACKUP = /\[(\d+\.?\d*)\]/;
const TWO_SCORE = /\[\[(\d+\.?\d*),\s?(\d+\.?\d*)\]\]/;
const TWO_SCORE_BACKUP = /\[(\d+\.?\d*),\s?(\d+\.?\d*)\]/;
/** Scores closer than this are a tie (FastChat's TIE_DELTA). */
const TIE_DELTA = 0.1;

/** The 1-10 rating of a single-answer judgment: "[[N]]", else "[N]", else -1. */
export function parseScore(judgment: string): number {
  const m = ONE_SCORE.exec(judgment) ?? ONE_SCORE_BACKUP.exec(judgment);
  return m ? Number(m[1]) : -1;
}

/** Verdict of one order of a pairwise judgment, in the order's own terms: A, B, tie, bothbad or error. */
export type OrderVerdict = 'A' | 'B' | 'tie' | 'bothbad' | 'error';

/**
 * FastChat's verdict rule: the first of "[[A]]", "[[B]]", "[[C]]" that occurs anywhere in the text
 * (checked in that order, not by position), then "[[D]]" (both bad) only when the prompt offers it;
 * otherwise an error verdict, never a guess.
 */
export function parseVerdict(judgment: string, prompt: Pick<JudgePrompt, 'output_format' | 'offersBothBad'>): OrderVerdict {
  if (prompt.output_format === '[[rating_a,rating_b]]') {
    const m = TWO_SCORE.exec(judgment) ?? TWO_SCORE_BACKUP.exec(judgment);
    if (!m) return 'error';
    const a = Number(m[1]), b = Number(m[2]);
    return Math.abs(a - b) <= TIE_DELTA ? 'tie' : a > b ? 'A' : 'B';
  }
  if (judgment.includes('[[A]]')) return 'A';
  if (judgment.includes('[[B]]')) return 'B';
  if (judgment.includes('[[C]]')) return 'tie';
  if (prompt.offersBothBad && judgment.includes('[[D]]')) return 'bothbad';
  return 'error';
}
