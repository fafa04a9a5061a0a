export { type LlamaConfig, parseLlamaConfig, loadLlamaConfig, headDim } from './config.js';
export { llamaParamShapes, initLlamaWeights, toTensors, countParams, isNormWeight } from './params.js';
export { ArenaLayout, Arenas, type ArenaEntry, type ArenaGroupLayout, type DecayGroup } from './arenas.js';
export { LlamaModel, type LossResult, type ModelOptions } from './llama.js';
export { makeBatch, countTrained, validateBatch, uploadBatch, type Batch, type DeviceBatch } from './batch.js';
export { ropeTables } from './rope-tables.js';
export { presetNames, resolveConfig } from './presets.js';
