/**
 * MT-Bench-X judging and analysis, with FastChat llm_judge's semantics.
 *
 * Stable for other modules (the report, the annotation app) to build on:
 * - the types of ./types.ts (judgment and vote records use FastChat's own field names);
 * - loadBenchLanguage / listBenchLanguages / readJudgmentFile / readVotes;
 * - summarizeResults(benchDir, { lang?, monolingual? }): exactly the object `mtbench show --json` prints;
 * - computeAgreement(votes, judgments?, { categories?, raters?, judge? }): exactly what `mtbench agreement --json`
 *   prints; it throws when the votes/judgments hold several LLM judges and `judge` is not given;
 * - fleissKappa(counts): Fleiss' kappa of an items x categories count table;
 * - judgmentsToVotes(pairJudgments): an LLM judge's pairwise records as votes;
 * - runJudge(options): the `mtbench judge` run.
 * Everything else under src/mtbench/ is internal and may change.
 */
export * from './types.js';
export { listBenchLanguages, loadBenchLanguage, readJudgmentFile, langDir } from './bench-files.js';
export { readVotes, judgmentsToVotes, computeAgreement, STUDY_SUBSET, mtBenchCategory } from './agreement.js';
export { fleissKappa } from './fleiss.js';
export { summarizeResults } from './summary.js';
export { runJudge } from './judge.js';
