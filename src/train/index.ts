export { AdamW, STUDY_ADAMW, type AdamWConfig } from './adamw.js';
export { trainStep, trainedTokens, hostBatch, type StepResult } from './step.js';
