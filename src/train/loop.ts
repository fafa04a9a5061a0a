// The fine-tuning loop: data -> micro-batches -> forward/backward -> AdamW, with validation per
// language after each epoch (and every evalEvery steps), early stopping, atomic checkpoints, an
// exact resume, and the run folder's record: metrics.jsonl, loss.svg, summary.json, TensorBoard.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CheckpointStore, readCheckpoint, readHfConfig, resolveCheckpointDir, writeCheckpoint, type TrainingState } from '../checkpoint/index.js';
import { collateBatch, hashFile, loadDataset, planBatches, prepareExamples, specialTokenStrings, trainedChatTemplate, type Dataset } from '../data/index.js';
import { LlamaModel, initLlamaWeights, resolveConfig, type LlamaConfig } from '../model/index.js';
import { communicator, shareOf, type Communicator } from '../parallel/index.js';
import { Tensor, keep, withScope } from '../tensor/index.js';
import { SentencePieceTokenizer } from '../tokenizer/index.js';
import { AdamW } from './adamw.js';
import { RESULT_NEUTRAL, type RunConfig, type TrainSettings } from './config.js';
import { pickTrainDevice } from './device.js';
import { fingerprintDiff, runFingerprint } from './fingerprint.js';
import { MetricsLog } from './metrics.js';
import { writeLossPlot } from './plots.js';
import { plainReporter, reporterFor, type ProgressReporter } from './progress.js';
import { acquireRunLock, checkStartOver, clearRunOutputs, readRunInfo, writeRunInfo } from './run-folder.js';
import { linearLr } from './schedule.js';
import { parallelStep, trainStep } from './step.js';
import { summaryTable, writeSummary, type EpochValidation, type RunStatus, type RunSummary } from './summary.js';
import { TensorBoardWriter } from './tensorboard.js';

export type TrainPhase = 'loading' | 'training' | 'saving' | 'done';

export interface TrainOptions {
  /** true: the run's own latest checkpoint; a string: a checkpoint or checkpoint folder. */
  resume?: boolean | string;
  /** Receives every line (progress lines every train.logEvery steps); without it, stdout gets a bar or lines. */
  log?: (line: string) => void;
  /** Where progress and log lines go; overrides `log`. */
  reporter?: ProgressReporter;
  /** Polled between steps and after loading; true saves a checkpoint and stops. */
  shouldStop?: () => boolean;
  /** Told where the run stands (the CLI's supervisor uses it to answer a Ctrl-C at once). */
  onPhase?: (phase: TrainPhase, step: number, totalSteps: number) => void;
  /** What run.json records as the run's origin: the config file, or "embedded default". */
  source?: string;
  /** Clear the outputs of an earlier run from the same source first (the demo); another source's run is refused. */
  startOver?: boolean;
  /**
   * The processes this run is split over; default: from the launcher's variables (mpirun, srun), one
   * process when there are none. Every rank runs runTraining with the same config.
   */
  comm?: Communicator;
}

export interface TrainResult {
  steps: number;
  totalSteps: number;
  status: RunStatus;
  /** The checkpoint written last. */
  checkpoint: string;
  /** Mean validation loss per language and over all, from the last evaluation. */
  validation?: Record<string, number>;
  best?: { path: string; valLoss: number; epoch?: number };
  stoppedEarly: boolean;
  /** The checkpoint this run continued from, if it resumed. */
  resumedFrom?: string;
  summary: RunSummary;
}

/** Raised when a step's loss or gradient norm is not finite; names the step and the last good checkpoint. */
export class DivergedError extends Error {}

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
      const r = withScope(() => model.forwardLoss(collateBatch(data.validation, rows, maxSeqLen)));
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

/** Warnings about settings that are legal but almost certainly not meant, given before step 1. */
export function settingWarnings(s: TrainSettings, totalSteps: number, perEpoch: number): string[] {
  const w: string[] = [];
  if (s.warmupSteps >= totalSteps) w.push(`train.warmupSteps ${s.warmupSteps} is not shorter than the run (${totalSteps} steps): the learning rate never reaches train.lr ${s.lr}`);
  if (s.lr > 0.1) w.push(`train.lr ${s.lr} is far above usual values (1e-5 to 1e-3): expect the loss to diverge`);
  if (s.saveEvery > totalSteps) w.push(`train.saveEvery ${s.saveEvery} is longer than the run (${totalSteps} steps): only epoch ends save`);
  if (s.evalEvery > totalSteps) w.push(`train.evalEvery ${s.evalEvery} is longer than the run (${totalSteps} steps): only epoch ends validate`);
  if (s.maxGradNorm === 0) w.push('train.maxGradNorm is 0: gradients are not clipped');
  if (s.earlyStopping && s.earlyStopping.patience >= s.epochs) w.push(`train.earlyStopping.patience ${s.earlyStopping.patience} is not below train.epochs ${s.epochs}: early stopping cannot trigger`);
  if (perEpoch < 1) w.push('an epoch has no step');
  return w;
}

/** What the loop keeps in each checkpoint beyond the tensors, so a resume continues the record too. */
interface RunRecord {
  tokens: number;
  wallSeconds: number;
  epochs: EpochValidation[];
}

function bestEpoch(epochs: EpochValidation[]): EpochValidation | undefined {
  let best: EpochValidation | undefined;
  for (const e of epochs) if (e.validation.all !== undefined && (!best || e.validation.all < best.validation.all)) best = e;
  return best;
}

/** Epochs since the best one that did not beat it by minDelta. */
function epochsWithoutImprovement(epochs: EpochValidation[], minDelta: number): number {
  let best = Infinity;
  let bad = 0;
  for (const e of epochs) {
    if (e.validation.all < best - minDelta) {
      best = e.validation.all;
      bad = 0;
    } else bad++;
  }
  return bad;
}

export async function runTraining(cfg: RunConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const started = performance.now();
  const s = cfg.train;
  const source = opts.source ?? 'the API (runTraining)';
  const comm = opts.comm ?? communicator();
  // Data parallel: rank 0 owns the run folder (lock, checkpoints, metrics, validation, log lines);
  // every rank computes its share of each step's micro-batches and the same AdamW update.
  const dp = comm.size > 1;
  const lead = comm.rank === 0;
  let lock: { release(): void } = { release() {} };
  const silent: ProgressReporter = { log() {}, step() {}, close() {} };
  const reporter = !lead ? silent : opts.reporter ?? (opts.log ? plainReporter(opts.log, { every: s.logEvery || 1 }) : undefined);
  let rep: ProgressReporter = reporter ?? { log: (l) => console.log(l), step() {}, close() {} };
  const log = (l: string) => rep.log(l);
  let model: LlamaModel | undefined;
  let opt: AdamW | undefined;
  try {
    // The device first: a run asking for a GPU this build or machine lacks fails before anything else.
    const { device, why } = pickTrainDevice(s.device, undefined, comm.size);
    log(why);
    // Checked first, before anything slow: the folder is writable and no other process uses it
    // (inside the try, so that in a data-parallel job a refused lock ends every rank at once).
    if (lead) lock = acquireRunLock(cfg.out);
    if (opts.startOver && lead) {
      checkStartOver(cfg.out, source);
      clearRunOutputs(cfg.out);
    }
    // The other ranks look at the checkpoints only once rank 0 has the lock and has cleared the folder.
    comm.barrier('rank 0 taking the run folder');
    const store = new CheckpointStore(join(cfg.out, 'checkpoints'), { keepLast: s.keepLast });
    const resumeFrom = opts.resume === true ? (store.latest()?.path ?? null) : opts.resume ? resumeDir(opts.resume) : null;
    if (opts.resume === true && !resumeFrom) log(`resume: no checkpoint in ${store.root} yet; starting fresh`);
    if (!resumeFrom && store.list().length > 0) {
      throw new Error(`${store.root} already holds checkpoints of a run: resume it with --resume, or choose another "out"`);
    }
    // Resuming another folder's checkpoint into an "out" that holds a run of its own would rotate
    // that run's checkpoints away (and mix them with this one's as "best").
    if (resumeFrom && store.list().length > 0 && resolve(dirname(resumeFrom)) !== resolve(store.root)) {
      throw new Error(`${store.root} already holds checkpoints of another run; resuming ${resumeFrom} would write among them: ` +
        `set "out" to ${dirname(dirname(resumeFrom))} (the run it belongs to) or to an empty folder`);
    }
    if (lead && (!resumeFrom || !readRunInfo(cfg.out))) writeRunInfo(cfg.out, { source, started: new Date().toISOString() });

    opts.onPhase?.('loading', 0, 0);
    log(`loading the tokenizer and the data (${cfg.data.languages.join(', ')})`);
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
    const trainedTemplate = await trainedChatTemplate(data.template, cfg.data.template.kind === 'jinja' ? cfg.data.template.path : undefined);
    const chatTemplate = trainedTemplate === undefined ? undefined : { chatTemplate: trainedTemplate, special: specialTokenStrings(tokenizer), maxLength: src.config.max_position_embeddings };
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
    if (data.validation.ids.length === 0 && (s.earlyStopping || s.evalEvery > 0)) {
      throw new Error(`train.${s.earlyStopping ? 'earlyStopping' : 'evalEvery'} needs validation data, but the validation set is empty: set data.validation (e.g. fraction: 0.05)`);
    }
    for (const w of settingWarnings(s, totalSteps, perEpoch)) log(`warning: ${w}`);
    if (dp && perEpoch * Math.ceil(s.globalBatch / s.microBatch) > 0 && Math.ceil(s.globalBatch / s.microBatch) < comm.size) {
      log(`warning: a step has ${Math.ceil(s.globalBatch / s.microBatch)} micro-batches for ${comm.size} ranks: ${comm.size - Math.ceil(s.globalBatch / s.microBatch)} ranks idle; lower train.microBatch`);
    }
    // Data parallel: a stop request is honoured at a step, where the ranks agree on it.
    if (!dp && opts.shouldStop?.()) {
      log('stopped during data loading: no step was taken and nothing was saved');
      const summary = emptySummary(totalSteps, s.epochs, resumeFrom);
      return { steps: 0, totalSteps, status: 'interrupted', checkpoint: resumeFrom ?? '', stoppedEarly: true, resumedFrom: resumeFrom ?? undefined, summary };
    }

    const runConfig = runFingerprint(cfg, { tokenizerHash, model: src.config, train: data.train, validation: data.validation });
    let epoch = 0;
    let batchIndex = 0;
    let record: RunRecord = { tokens: 0, wallSeconds: 0, epochs: [] };
    // ZeRO-1: the optimizer state split over the ranks (nothing to split on one process).
    const shardOver = s.zero === 1 && dp ? comm : undefined;
    const adamw = { beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm };
    if (resumeFrom) {
      const ck = readCheckpoint(resumeFrom, { alloc: (shape, dtype) => keep(Tensor.empty(shape, dtype, device)), dtype: s.dtype });
      if (!ck.state || !ck.optimizer) throw new Error(`${resumeFrom}: has no training state to resume from`);
      const diff = fingerprintDiff(ck.state.runConfig, runConfig);
      if (diff.length) {
        for (const t of ck.params.values()) t.dispose();
        for (const t of ck.optimizer.values()) t.dispose();
        throw new Error(`${resumeFrom}: cannot resume: it was written by a run with other settings or data (checkpoint → now):\n  ${diff.join('\n  ')}\n` +
          `Resume with the same ones (these may change: ${RESULT_NEUTRAL.join(', ')}), or start a new run in another folder`);
      }
      model = new LlamaModel(ck.config.config, ck.params, { checkpointing: s.checkpointing });
      opt = new AdamW(model.weights, adamw, { tensors: ck.optimizer, step: ck.state.step }, shardOver);
      const pos = ck.state.dataPosition as { epoch: number; batch: number };
      [epoch, batchIndex] = [pos.epoch, pos.batch];
      const saved = ck.state.extra?.run as unknown as RunRecord | undefined;
      if (saved) record = saved;
      log(`resumed from ${resumeFrom}: step ${opt.step}, epoch ${epoch + 1}, batch ${batchIndex}`);
    } else if (src.weightsDir) {
      const ck = readCheckpoint(src.weightsDir, { alloc: (shape, dtype) => keep(Tensor.empty(shape, dtype, device)), dtype: s.dtype, weightsOnly: true });
      model = new LlamaModel(ck.config.config, ck.params, { checkpointing: s.checkpointing });
      opt = new AdamW(model.weights, adamw, undefined, shardOver);
      log(`model: weights from ${src.weightsDir}`);
    } else {
      model = LlamaModel.fromWeights(src.config, initLlamaWeights(src.config, s.initSeed), s.dtype, { checkpointing: s.checkpointing }, device);
      opt = new AdamW(model.weights, adamw, undefined, shardOver);
      log(`model: ${cfg.model} from random weights (seed ${s.initSeed}); give a model folder to fine-tune pretrained weights`);
    }
    const m = model;
    const o = opt;
    // Every way of making the model above must put it on the picked device: a model left on the CPU
    // would train there silently (it once did, for random weights, seen on the first GPU run).
    if (m.device !== device) throw new Error(`internal: the model was built on ${m.device}, not on the picked device ${device}`);
    if (dp) {
      // Every rank built the same weights (same seed or files); the broadcast makes that a guarantee.
      comm.broadcast([...m.weights.flats, ...o.stateFlats()], 0, 'initial weights from rank 0');
      o.syncMastersFromWeights();
      log(`data parallel: ${comm.size} ranks (${comm.world.launcher}); rank r computes micro-batches r, r + ${comm.size}, ... of each step`);
    }
    const mem = o.stateBytes();
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 2 ** 20 ? 2 : 1)} MiB`;
    log(o.shard
      ? `optimizer state: ${mib(mem.perRank)} per rank (ZeRO-1 over ${comm.size} ranks; ${mib(mem.unsharded)} unsharded)`
      : `optimizer state: ${mib(mem.perRank)}${dp ? ` per rank (unsharded: train.zero 1 would hold about ${mib(mem.unsharded / comm.size)})` : ''}`);
    if (s.zero === 1 && !dp) log('train.zero 1: one process, nothing to shard; the optimizer state is whole');

    const metrics = lead ? new MetricsLog(join(cfg.out, 'metrics.jsonl')) : { append() {} };
    if (resumeFrom) metrics.append({ event: 'resume', step: o.step, from: resumeFrom, time: new Date().toISOString() });
    const tb = lead && cfg.report.includes('tensorboard') ? new TensorBoardWriter(join(cfg.out, 'tensorboard')) : undefined;
    if (tb) log(`tensorboard: ${tb.file} (tensorboard --logdir ${join(cfg.out, 'tensorboard')})`);
    const title = `${source === 'embedded default' ? 'node train.js (embedded default)' : source}: loss`;
    let lastCheckpoint = resumeFrom ?? '';
    let validation: Record<string, number> | undefined;
    const wall = () => record.wallSeconds + (performance.now() - started) / 1000;

    const save = (valLoss?: number) => {
      opts.onPhase?.('saving', o.step, totalSteps);
      // ZeRO-1: rank 0 gathers the shards and writes the whole state as an unsharded run does, so
      // any world size, sharded or not, resumes from it.
      const gathered = o.gatherState(`checkpoint of step ${o.step}`);
      if (!lead) {
        comm.barrier(`checkpoint of step ${o.step} on rank 0`, { waitForRank0: true });
        return;
      }
      const state: TrainingState = {
        step: o.step,
        epoch,
        dataPosition: { epoch, batch: batchIndex },
        schedule: { kind: 'linear', peak: s.lr, warmup: s.warmupSteps, total: totalSteps },
        rng: null, // nothing random happens after initialisation: the data order is a function of (seed, epoch)
        runConfig: runConfig as TrainingState['runConfig'],
        extra: { run: JSON.parse(JSON.stringify({ ...record, wallSeconds: wall() })), parallel: { worldSize: comm.size, zero: o.shard ? 1 : 0 } },
      };
      try {
        lastCheckpoint = store.save(
          o.step,
          (tmp) =>
            writeCheckpoint(tmp, { params: m.params, optimizer: gathered!.tensors, state }, {
              config: m.config,
              baseConfig: src.baseConfig,
              // From the model folder, the whole tokenizer (tokenizer_config.json, chat template) comes along.
              tokenizer: src.weightsDir && !cfg.tokenizer ? src.weightsDir : tokPath,
              dtype: s.dtype === 'f32' ? 'F32' : 'BF16',
              chatTemplate,
            }),
          { valLoss },
        );
      } finally {
        gathered!.dispose();
      }
      log(`saved ${lastCheckpoint}${valLoss === undefined ? '' : ` (validation loss ${valLoss.toFixed(4)})`}`);
      if (dp) comm.barrier(`checkpoint of step ${o.step} on rank 0`, { waitForRank0: true });
    };
    const validate = async (what: string) => {
      if (!lead) {
        // Only the overall loss is needed here (early stopping); rank 0 sends it.
        const all = new Float64Array(1);
        comm.allreduceSum([], all, `validation ${what} on rank 0`, { waitForRank0: true });
        return (validation = { all: all[0] });
      }
      validation = evaluate(m, data, s, maxSeqLen);
      if (dp) comm.allreduceSum([], new Float64Array([validation.all]), `validation ${what} on rank 0`, { waitForRank0: true });
      metrics.append({ step: o.step, epoch: epoch + (batchIndex === 0 ? 0 : 1), validation });
      tb?.scalars(o.step, Object.fromEntries(Object.entries(validation).map(([l, v]) => [`validation/${l}`, v])));
      log(`validation ${what}: ${Object.entries(validation).map(([l, v]) => `${l} ${v.toFixed(4)}`).join(', ')}`);
      await writeLossPlot(cfg.out, title);
      return validation;
    };

    const diverged = (step: number, what: string, batchRows: number[][]): DivergedError => {
      const ids = batchRows.flat().slice(0, 5).map((i) => `${data.train.ids[i]} (${data.train.langs[i]})`);
      const good = store.latest();
      metrics.append({ event: 'diverged', step, what });
      return new DivergedError(`step ${step}/${totalSteps}: ${what}; training stopped and nothing was saved from this step.\n` +
        `  Last good checkpoint: ${good ? `${good.path} (step ${good.step})` : 'none (no checkpoint was saved yet)'}.\n` +
        `  Try a lower train.lr (now ${s.lr}), a longer train.warmupSteps (now ${s.warmupSteps}) or train.maxGradNorm (now ${s.maxGradNorm}), ` +
        `and start a new run (a checkpoint folder can be its "model"); or check this batch's data: examples ${ids.join(', ')}${batchRows.flat().length > 5 ? ', ...' : ''}`);
    };

    let status: RunStatus = 'completed';
    if (reporter === undefined && lead) rep = reporterFor(process.stdout, s.logEvery || Math.max(1, Math.round(totalSteps / 25)));
    if (epoch >= s.epochs) log(`the run is already complete (${o.step} steps)`);
    const firstStep = o.step;
    const early = s.earlyStopping;
    if (early && epoch > 0 && epoch < s.epochs && epochsWithoutImprovement(record.epochs, early.minDelta) >= early.patience) {
      status = 'early-stopped';
      log(`early stopping: this run already stopped improving (patience ${early.patience})`);
    }
    const maxStepsReached = () => s.maxSteps > 0 && o.step >= s.maxSteps;
    opts.onPhase?.('training', o.step, totalSteps);
    train: while (epoch < s.epochs && status === 'completed') {
      const batches = plan(epoch);
      if (maxStepsReached() || (!dp && opts.shouldStop?.())) {
        status = maxStepsReached() ? 'paused' : 'interrupted';
        log(status === 'paused' ? `stopped before step ${o.step + 1}: train.maxSteps is ${s.maxSteps}; raise it to continue` : `stopped before step ${o.step + 1}`);
        break;
      }
      while (batchIndex < batches.length) {
        const t0 = performance.now();
        const lr = linearLr(s.lr, o.step, totalSteps, s.warmupSteps);
        const rows = batches[batchIndex];
        const stepNo = o.step + 1;
        // Told before the step, so a Ctrl-C during it is answered with this step's number.
        opts.onPhase?.('training', o.step, totalSteps);
        let res;
        let stopAgreed = false;
        try {
          res = withScope(() => {
            const micro = [];
            for (let i = 0; i < rows.length; i += s.microBatch) micro.push(rows.slice(i, i + s.microBatch));
            if (dp) {
              // The loss is normalised by the trained tokens of the whole global batch, which every
              // rank counts from the data plan (host arrays only) for the micro-batches it skips.
              const hosts = micro.map((r) => collateBatch(data.train, r, maxSeqLen));
              const tokens = hosts.reduce((n, b) => n + b.trainedTokens, 0);
              const mine = shareOf(hosts, comm.rank, comm.size);
              const r = parallelStep(m, o, mine, tokens, lr, comm, { step: stepNo, stop: opts.shouldStop?.() ?? false });
              stopAgreed = r.stop;
              return r;
            }
            return trainStep(m, o, micro.map((r) => collateBatch(data.train, r, maxSeqLen)), lr);
          });
        } catch (e) {
          const msg = (e as Error).message;
          const nf = /gradient norm is (NaN|-?Infinity)/.exec(msg);
          if (nf) throw diverged(stepNo, `the gradient norm is ${nf[1]} (the weights were not updated)`, rows);
          throw e;
        }
        if (!Number.isFinite(res.loss)) throw diverged(stepNo, `the loss is ${res.loss}`, rows);
        batchIndex++;
        const ms = performance.now() - t0;
        record.tokens += res.tokens;
        metrics.append({ step: o.step, epoch: epoch + 1, loss: res.loss, lr, gradNorm: res.gradNorm, tokens: res.tokens, ms });
        tb?.scalars(o.step, { 'train/loss': res.loss, 'train/lr': lr, 'train/grad_norm': res.gradNorm, 'train/tokens_per_sec': (res.tokens * 1000) / ms });
        const elapsed = (performance.now() - started) / 1000;
        const done = o.step - firstStep;
        rep.step({
          epoch: epoch + 1, epochs: s.epochs, step: o.step, totalSteps, loss: res.loss, lr, gradNorm: res.gradNorm,
          tokensPerSec: (res.tokens * 1000) / ms, elapsed, eta: (elapsed / done) * (totalSteps - o.step), rssBytes: process.memoryUsage.rss(),
        });
        // Lets Node run the finalizers of this step's tensor handles (and signal and IPC handlers).
        await new Promise<void>((r) => setImmediate(r));
        const endOfEpoch = batchIndex === batches.length;
        if (endOfEpoch) {
          epoch++;
          batchIndex = 0;
          const v = await validate(`after epoch ${epoch}`);
          record.epochs.push({ epoch, step: o.step, validation: v });
          save(v.all);
          if (early && epoch < s.epochs) {
            const bad = epochsWithoutImprovement(record.epochs, early.minDelta);
            if (bad >= early.patience) {
              const b = bestEpoch(record.epochs)!;
              log(`early stopping: validation loss has not improved by ${early.minDelta} for ${bad} epoch${bad > 1 ? 's' : ''}; ` +
                `best was epoch ${b.epoch} (${b.validation.all.toFixed(4)})`);
              status = 'early-stopped';
            }
          }
        } else {
          if (s.evalEvery > 0 && o.step % s.evalEvery === 0) await validate(`at step ${o.step}`);
          if (s.saveEvery > 0 && o.step % s.saveEvery === 0) save();
        }
        const stop = maxStepsReached() ? 'paused' : (dp ? stopAgreed : opts.shouldStop?.()) ? 'interrupted' : undefined;
        if (stop && epoch < s.epochs && status === 'completed') {
          if (!endOfEpoch && !(s.saveEvery > 0 && o.step % s.saveEvery === 0)) save();
          status = stop;
          log(stop === 'paused' ? `paused at step ${o.step} (train.maxSteps); continue with --resume` : `stopped at step ${o.step}; continue with --resume`);
          break train;
        }
        if (endOfEpoch) continue train;
      }
    }
    rep.close();
    rep = reporter ?? { log: (l) => console.log(l), step() {}, close() {} };
    const best = store.best();
    const bestEp = best ? record.epochs.find((e) => e.step === best.step) : undefined;
    const summary: RunSummary = {
      status,
      steps: o.step,
      totalSteps,
      epochsCompleted: epoch,
      maxEpochs: s.epochs,
      tokensTrained: record.tokens,
      wallSeconds: wall(),
      best: best && bestEp ? { epoch: bestEp.epoch, step: best.step, checkpoint: best.path, validation: bestEp.validation } : null,
      epochs: record.epochs,
      lastCheckpoint,
      resumedFrom: resumeFrom,
      settings: runConfig,
    };
    if (lead) writeSummary(cfg.out, summary);
    if (lead && (record.epochs.length || validation)) await writeLossPlot(cfg.out, title);
    // The others leave only once rank 0 has written the record, so the job ends as one.
    comm.barrier('rank 0 writing the run summary', { waitForRank0: true });
    opts.onPhase?.('done', o.step, totalSteps);
    log(summaryTable(summary, cfg.out));
    return {
      steps: o.step,
      totalSteps,
      status,
      checkpoint: lastCheckpoint,
      validation,
      best: best && { path: best.path, valLoss: best.valLoss, epoch: bestEp?.epoch },
      stoppedEarly: status !== 'completed',
      resumedFrom: resumeFrom ?? undefined,
      summary,
    };
  } catch (e) {
    // A rank that fails alone would leave the others waiting for it: end the whole job now, naming it.
    if (dp) {
      rep.close();
      lock.release();
      comm.abort((e as Error).message);
    }
    throw e;
  } finally {
    rep.close();
    model?.dispose();
    opt?.dispose();
    lock.release();
  }
}

function emptySummary(totalSteps: number, maxEpochs: number, resumedFrom: string | null): RunSummary {
  return { status: 'interrupted', steps: 0, totalSteps, epochsCompleted: 0, maxEpochs, tokensTrained: 0, wallSeconds: 0, best: null, epochs: [], lastCheckpoint: resumedFrom ?? '', resumedFrom };
}
