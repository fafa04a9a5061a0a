import type { JudgeRunOptions, JudgeRunResult } from './types.js';

export async function runJudge(_opts: JudgeRunOptions): Promise<JudgeRunResult> {
  throw new Error('runJudge: landing shortly');
}
