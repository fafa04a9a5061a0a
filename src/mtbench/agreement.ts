import type { AgreementOptions, AgreementResult, PairJudgment, Vote } from './types.js';

/** The study's subset of categories for agreement. */
export const STUDY_SUBSET = ['roleplay', 'coding', 'extraction', 'math', 'reasoning'];

/** MT-Bench's fixed layout: ids 81-90 writing, 91-100 roleplay, ... 151-160 humanities ("81_DE" too). */
export function mtBenchCategory(_id: number | string): string | undefined {
  throw new Error('mtBenchCategory: landing shortly');
}

/** Reads votes in FastChat's human-judgment format (JSON lines or a JSON array). */
export async function readVotes(_file: string): Promise<Vote[]> {
  throw new Error('readVotes: landing shortly');
}

/** An LLM judge's pairwise records as votes (consistent verdicts; inconsistent as tie; errors dropped). */
export function judgmentsToVotes(_judgments: PairJudgment[]): { votes: Vote[]; errors: number } {
  throw new Error('judgmentsToVotes: landing shortly');
}

export function computeAgreement(_votes: Vote[], _judgments?: PairJudgment[], _opts?: AgreementOptions): AgreementResult {
  throw new Error('computeAgreement: landing shortly');
}
