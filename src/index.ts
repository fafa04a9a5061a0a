// `import ... from 'polytune'`: the whole front end. Subpaths (polytune/tokenizer, polytune/data, ...)
// load only their part; polytune/tokenizer and polytune/data never load the native addon.
export * from './tensor/index.js';
export * from './model/index.js';
export * from './tokenizer/index.js';
export * from './data/index.js';
export * from './checkpoint/index.js';
export * from './train/index.js';
export * from './train/grid.js';
export { renderSvg, renderVegaSvg, type VegaLiteSpec } from './report/vega.js';
// Both define a Batch: the model's (tensors) keeps the name, the data layer's (host arrays) is renamed.
export type { Batch } from './model/index.js';
export type { Batch as DataBatch } from './data/index.js';
