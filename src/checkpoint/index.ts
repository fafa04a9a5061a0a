export { HostTensor, tensorSource, type Alloc, type ByteTensor } from './byte-tensor.js';
export { readCheckpoint, verifyCheckpoint, writeCheckpoint, MANIFEST, TRAINING_STATE_DIR, type CheckpointContent, type LoadedCheckpoint, type LoadOptions, type SaveOptions } from './checkpoint.js';
export { copyTokenizerFiles, hfConfigJson, readHfConfig, writeChatTemplateFiles, type ChatTemplateFiles, type HfConfig } from './hf-files.js';
export { checkTensorSet, expectedLlamaTensors, type LlamaShapeConfig } from './llama-names.js';
export { CheckpointStore, resolveCheckpointDir, type CheckpointRef, type SavePhase, type StoreOptions } from './store.js';
export { decodeState, encodeState, expectedOptimizerTensors, optimizerTensorName, OPTIMIZER_KINDS, type StateValue, type TrainingState } from './training-state.js';
export { readHeader, readTensors, writeSafetensors, type TensorDest, type TensorSink, type TensorSource } from './safetensors/file.js';
export { openSharded, readSharded, writeSharded, DEFAULT_MAX_SHARD_BYTES } from './safetensors/sharded.js';
export type { HostDtype, StDtype } from './safetensors/dtypes.js';
