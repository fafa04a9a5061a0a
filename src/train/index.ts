export { AdamW, STUDY_ADAMW, type AdamWConfig } from './adamw.js';
export { trainStep, trainedTokens, hostBatch, type StepResult } from './step.js';
export { linearLr } from './schedule.js';
export { parseRunConfig, loadRunConfig, STUDY_TRAIN, type RunConfig, type TrainSettings } from './config.js';
export { runTraining, evaluate, type TrainOptions, type TrainResult } from './loop.js';
export { embeddedDefault } from './embedded.js';
