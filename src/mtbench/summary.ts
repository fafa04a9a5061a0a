import type { ResultsSummary, SummarizeOptions } from './types.js';

export async function summarizeResults(_benchDir: string, _opts: SummarizeOptions = {}): Promise<ResultsSummary> {
  throw new Error('summarizeResults: landing shortly');
}
