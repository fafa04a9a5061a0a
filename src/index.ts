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
// One Batch (host arrays) from the data layer to the model; collateBatch's carries the data layer's bookkeeping too.
export type { Batch } from './model/index.js';
export type { CollatedBatch } from './data/index.js';
