export { AdamW, STUDY_ADAMW, type AdamWConfig } from './adamw.js';
export { trainStep, trainedTokens, hostBatch, type StepResult } from './step.js';
export { linearLr } from './schedule.js';
export { parseRunConfig, loadRunConfig, readConfigFile, defaultOutFor, STUDY_TRAIN, TRAIN_DOCS, RESULT_NEUTRAL, REPORTERS, type RunConfig, type TrainSettings, type EarlyStopping, type Reporter } from './config.js';
export { applyOverrides, parseOverride } from './overrides.js';
export { runTraining, evaluate, type TrainOptions, type TrainResult } from './loop.js';
export { embeddedDefault } from './embedded.js';
