// The fine-tuning loop: data -> micro-batches -> forward/backward -> AdamW, with validation per
// language after each epoch, atomic checkpoints, and an exact resume.
import { appendFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore, readCheckpoint, readHfConfig, resolveCheckpointDir, writeCheckpoint, type TrainingState } from '../checkpoint/index.js';
import { collateBatch, hashFile, loadDataset, planBatches, prepareExamples, type Batch as DataBatch, type Dataset } from '../data/index.js';
import { LlamaModel, initLlamaWeights, resolveConfig, type Batch, type LlamaConfig } from '../model/index.js';
import { Tensor, keep, withScope } from '../tensor/index.js';
import { SentencePieceTokenizer } from '../tokenizer/index.js';
import { AdamW } from './adamw.js';
import { RESULT_NEUTRAL as RESUMABLE_CHANGES, type RunConfig, type TrainSettings } from './config.js';
import { linearLr } from './schedule.js';
import { trainStep } from './step.js';

export interface TrainOptions {
  /** true: the run's own latest checkpoint; a string: a checkpoint or checkpoint folder. */
  resume?: boolean | string;
  log?: (line: string) => void;
  /** Polled after every step; true saves a checkpoint and stops (SIGINT/SIGTERM handlers set it). */
  shouldStop?: () => boolean;
}

export interface TrainResult {
  steps: number;
  totalSteps: number;
  /** The checkpoint written last. */
  checkpoint: string;
  /** Mean validation loss per language and over all, from the last evaluation. */
  validation?: Record<string, number>;
  best?: { path: string; valLoss: number };
  stoppedEarly: boolean;
  /** The checkpoint this run continued from, if it resumed. */
  resumedFrom?: string;
}

interface ModelSource {
  config: LlamaConfig;
  /** The starting config.json, whose extra fields the saved config.json keeps. */
  baseConfig?: Record<string, unknown>;
  /** Folder of weights to start from; none: random init. */
  weightsDir?: string;
  tokenizer?: string;
}

function modelSource(cfg: RunConfig): ModelSource {
  const m = cfg.model;
  if (existsSync(m) && statSync(m).isDirectory()) {
    if (!existsSync(join(m, 'model.safetensors')) && !existsSync(join(m, 'model.safetensors.index.json'))) {
      const other = readdirSync(m).filter((f) => /\.(bin|pt|pth|gguf)$/.test(f));
      throw new Error(`${m}: no model.safetensors or model.safetensors.index.json` +
        (other.length ? ` (found ${other.slice(0, 3).join(', ')}: convert them to safetensors first)` : ''));
    }
    const tok = join(m, 'tokenizer.model');
    const hf = readHfConfig(m);
    return { config: hf.config, baseConfig: hf.raw, weightsDir: m, tokenizer: existsSync(tok) ? tok : undefined };
  }
  return { config: resolveConfig(m) };
}

/** `--resume PATH`: a checkpoint, a folder of checkpoints, or the run folder holding checkpoints/. */
function resumeDir(path: string): string {
  try {
    return resolveCheckpointDir(path);
  } catch (e) {
    if (existsSync(join(path, 'checkpoints'))) return resolveCheckpointDir(join(path, 'checkpoints'));
    throw e;
  }
}

/** A flat, padding-free micro-batch as the model takes it: one packed row, attention kept per example. */
function modelBatch(b: DataBatch): Batch {
  const n = b.tokens.length;
  return {
    ids: Tensor.fromArray(b.tokens, [1, n]),
    targets: Tensor.fromArray(b.labels, [n]),
    positions: Tensor.fromArray(b.positions, [n]),
    doc: Tensor.fromArray(b.docIds, [1, n]),
  };
}

/** Mean loss per trained token of the validation set, per language and over all of it. */
export function evaluate(model: LlamaModel, data: Dataset, settings: TrainSettings, maxSeqLen: number): Record<string, number> {
  const prep = prepareExamples(data.validation, maxSeqLen);
  const byLang = new Map<string, number[]>();
  for (const i of prep.indices) {
    const lang = data.validation.langs[i];
    if (!byLang.has(lang)) byLang.set(lang, []);
    byLang.get(lang)!.push(i);
  }
  const out: Record<string, number> = {};
  let sum = 0;
  let count = 0;
  for (const [lang, idx] of [...byLang].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let ls = 0;
    let n = 0;
    for (let i = 0; i < idx.length; i += settings.microBatch) {
      const rows = idx.slice(i, i + settings.microBatch).map((e) => [e]);
      const r = withScope(() => model.forwardLoss(modelBatch(collateBatch(data.validation, rows, maxSeqLen))));
      ls += r.lossSum;
      n += r.count;
    }
    out[lang] = ls / n;
    sum += ls;
    count += n;
  }
  if (count > 0) out.all = sum / count;
  return out;
}

/** What must not change between a run and its resume: the settings, the tokenizer's bytes, the data's size. */
function fingerprint(cfg: RunConfig, tokenizerHash: string, examples: number): Record<string, unknown> {
  const train = { ...cfg.train } as Record<string, unknown>;
  for (const k of RESUMABLE_CHANGES) delete train[k];
  return JSON.parse(JSON.stringify({ model: cfg.model, tokenizer: tokenizerHash, trainingExamples: examples, data: cfg.data, train }));
}

export async function runTraining(cfg: RunConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const s = cfg.train;
  const src = modelSource(cfg);
  const tokPath = cfg.tokenizer ?? src.tokenizer;
  if (!tokPath) throw new Error(`${cfg.model}: no tokenizer: set "tokenizer" to a SentencePiece .model file`);
  const tokenizer = SentencePieceTokenizer.load(tokPath);
  if (tokenizer.vocabSize > src.config.vocab_size) {
    throw new Error(`tokenizer ${tokPath} has ${tokenizer.vocabSize} pieces but the model's vocab_size is ${src.config.vocab_size}`);
  }
  if (src.config.bos_token_id !== undefined && tokenizer.bosId >= 0 && tokenizer.bosId !== src.config.bos_token_id) {
    throw new Error(`tokenizer ${tokPath} has BOS id ${tokenizer.bosId} but the model's config says bos_token_id ${src.config.bos_token_id}: not this model's tokenizer?`);
  }
  const tokenizerHash = await hashFile(tokPath);
  const data = await loadDataset(cfg.data, { tokenizer, tokenizerHash });
  const maxSeqLen = Math.min(cfg.data.maxSeqLen, src.config.max_position_embeddings);
  const prep = prepareExamples(data.train, maxSeqLen);
  const plan = (epoch: number) => planBatches(prep, { batchSize: s.globalBatch, maxSeqLen, seed: cfg.data.seed, epoch });
  const perEpoch = plan(0).length;
  if (perEpoch === 0) throw new Error('training data: no example has a trained token after truncation');
  const totalSteps = s.epochs * perEpoch;
  const tr = prep.stats;
  log(`data: ${prep.indices.length} training examples (${Object.entries(data.report.trainByLang).map(([l, n]) => `${l} ${n}`).join(', ')}), ` +
    `${data.validation.ids.length} validation; ${tr.truncated} truncated to ${maxSeqLen} tokens` +
    `${maxSeqLen < cfg.data.maxSeqLen ? ` (the model's max_position_embeddings)` : ''}, ${tr.noTrainedTokensLeft} left out`);

  const store = new CheckpointStore(join(cfg.out, 'checkpoints'), { keepLast: s.keepLast });
  const runConfig = fingerprint(cfg, tokenizerHash, prep.indices.length);
  let model: LlamaModel;
  let opt: AdamW;
  let epoch = 0;
  let batchIndex = 0;
  const adamw = { beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm };
  const resumeFrom = opts.resume === true ? (store.latest()?.path ?? null) : opts.resume ? resumeDir(opts.resume) : null;
  if (opts.resume === true && !resumeFrom) log(`resume: no checkpoint in ${store.root} yet; starting fresh`);
  if (!resumeFrom && store.list().length > 0) {
    throw new Error(`${store.root} already holds checkpoints of a run: resume it with --resume, or choose another "out"`);
  }
  if (resumeFrom) {
    const ck = readCheckpoint(resumeFrom, { alloc: (shape, dtype) => keep(Tensor.empty(shape, dtype)), dtype: s.dtype });
    if (!ck.state || !ck.optimizer) throw new Error(`${resumeFrom}: has no training state to resume from`);
    const saved = JSON.stringify(ck.state.runConfig);
    if (saved !== JSON.stringify(runConfig)) {
      throw new Error(`${resumeFrom}: was written by a run with another configuration, tokenizer or data; resume with the same ones (only ${RESUMABLE_CHANGES.join(', ')} may change)`);
    }
    model = new LlamaModel(ck.config.config, ck.params, { checkpointing: s.checkpointing });
    opt = new AdamW(model.params, adamw, { tensors: ck.optimizer, step: ck.state.step });
    const pos = ck.state.dataPosition as { epoch: number; batch: number };
    [epoch, batchIndex] = [pos.epoch, pos.batch];
    log(`resumed from ${resumeFrom}: step ${opt.step}, epoch ${epoch + 1}, batch ${batchIndex}`);
  } else if (src.weightsDir) {
    const ck = readCheckpoint(src.weightsDir, { alloc: (shape, dtype) => keep(Tensor.empty(shape, dtype)), dtype: s.dtype, weightsOnly: true });
    model = new LlamaModel(ck.config.config, ck.params, { checkpointing: s.checkpointing });
    opt = new AdamW(model.params, adamw);
    log(`model: weights from ${src.weightsDir}`);
  } else {
    model = LlamaModel.fromWeights(src.config, initLlamaWeights(src.config, s.initSeed), s.dtype, { checkpointing: s.checkpointing });
    opt = new AdamW(model.params, adamw);
    log(`model: ${cfg.model} from random weights (seed ${s.initSeed}); give a model folder to fine-tune pretrained weights`);
  }

  mkdirSync(cfg.out, { recursive: true });
  const metrics = join(cfg.out, 'metrics.jsonl');
  const record = (o: Record<string, unknown>) => appendFileSync(metrics, JSON.stringify(o) + '\n');
  let lastCheckpoint = resumeFrom ?? '';
  let validation: Record<string, number> | undefined;
  const save = (valLoss?: number) => {
    const state: TrainingState = {
      step: opt.step,
      epoch,
      dataPosition: { epoch, batch: batchIndex },
      schedule: { kind: 'linear', peak: s.lr, warmup: s.warmupSteps, total: totalSteps },
      rng: null, // nothing random happens after initialisation: the data order is a function of (seed, epoch)
      runConfig: runConfig as TrainingState['runConfig'],
    };
    lastCheckpoint = store.save(
      opt.step,
      (tmp) =>
        writeCheckpoint(tmp, { params: model.params, optimizer: opt.stateTensors(), state }, {
          config: model.config,
          baseConfig: src.baseConfig,
          // From the model folder, the whole tokenizer (tokenizer_config.json, chat template) comes along.
          tokenizer: src.weightsDir && !cfg.tokenizer ? src.weightsDir : tokPath,
          dtype: s.dtype === 'f32' ? 'F32' : 'BF16',
        }),
      { valLoss },
    );
    log(`saved ${lastCheckpoint}${valLoss === undefined ? '' : ` (validation loss ${valLoss.toFixed(4)})`}`);
  };

  let stoppedEarly = false;
  const stopRequested = () => (s.maxSteps > 0 && opt.step >= s.maxSteps) || (opts.shouldStop?.() ?? false);
  if (epoch >= s.epochs) log(`the run is already complete (${opt.step} steps)`);
  try {
    while (epoch < s.epochs && !stoppedEarly) {
      const batches = plan(epoch);
      if (stopRequested()) {
        stoppedEarly = true;
        log(`stopped before step ${opt.step + 1}: train.maxSteps is ${s.maxSteps}; raise it to continue`);
        break;
      }
      for (; batchIndex < batches.length; ) {
        const t0 = performance.now();
        const lr = linearLr(s.lr, opt.step, totalSteps, s.warmupSteps);
        const rows = batches[batchIndex];
        const res = withScope(() => {
          const micro = [];
          for (let i = 0; i < rows.length; i += s.microBatch) {
            const b = collateBatch(data.train, rows.slice(i, i + s.microBatch), maxSeqLen);
            micro.push({ batch: modelBatch(b), targets: b.labels });
          }
          return trainStep(model, opt, micro, lr);
        });
        batchIndex++;
        const ms = performance.now() - t0;
        record({ step: opt.step, epoch: epoch + 1, loss: res.loss, lr, gradNorm: res.gradNorm, tokens: res.tokens, ms });
        log(`epoch ${epoch + 1}/${s.epochs} step ${opt.step}/${totalSteps} loss ${res.loss.toFixed(4)} lr ${lr.toExponential(2)} ` +
          `grad-norm ${res.gradNorm.toFixed(3)} ${Math.round((res.tokens * 1000) / ms)} trained tok/s`);
        // Lets Node run the finalizers of this step's tensor handles (and signal handlers).
        await new Promise<void>((r) => setImmediate(r));
        if (batchIndex === batches.length) {
          epoch++;
          batchIndex = 0;
        }
        const stop = stopRequested();
        const endOfEpoch = batchIndex === 0;
        if (endOfEpoch) {
          validation = evaluate(model, data, s, maxSeqLen);
          record({ step: opt.step, epoch, validation });
          log(`validation after epoch ${epoch}: ${Object.entries(validation).map(([l, v]) => `${l} ${v.toFixed(4)}`).join(', ')}`);
          save(validation.all);
        } else if (stop || (s.saveEvery > 0 && opt.step % s.saveEvery === 0)) {
          save();
        }
        if (stop) {
          stoppedEarly = epoch < s.epochs;
          if (stoppedEarly) log(`stopped at step ${opt.step}; continue with --resume`);
          break;
        }
        if (endOfEpoch) break;
      }
    }
    const best = store.best();
    return {
      steps: opt.step,
      totalSteps,
      checkpoint: lastCheckpoint,
      validation,
      best: best && { path: best.path, valLoss: best.valLoss },
      stoppedEarly,
      resumedFrom: resumeFrom ?? undefined,
    };
  } finally {
    model.dispose();
    opt.dispose();
  }
}
