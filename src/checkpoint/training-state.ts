/** JSON plus bigint (64-bit RNG states) and the numbers JSON cannot spell (NaN, ±Infinity, -0). */
export type StateValue = null | boolean | number | bigint | string | StateValue[] | { [key: string]: StateValue };

/** Everything beyond the tensors that a run needs to continue exactly where it stopped. */
export interface TrainingState {
  /** Optimizer steps taken. */
  step: number;
  epoch: number;
  /** Where the data order stands, e.g. { epoch, index, shuffleSeed }. */
  dataPosition: StateValue;
  /** Learning-rate schedule state. */
  schedule: StateValue;
  rng: StateValue;
  /** The run's configuration, so a resume can refuse a changed one. */
  runConfig: StateValue;
  /** Anything else the loop keeps (best validation loss, token counts, ...). */
  extra?: { [key: string]: StateValue };
}

export const OPTIMIZER_KINDS = ['master', 'exp_avg', 'exp_avg_sq'] as const;
export type OptimizerKind = (typeof OPTIMIZER_KINDS)[number];

/** "exp_avg.model.norm.weight": the optimizer tensors are keyed by kind and Hugging Face name. */
export const optimizerTensorName = (kind: OptimizerKind, hfName: string): string => `${kind}.${hfName}`;

/**
 * The optimizer tensors a checkpoint must hold for these parameters: both AdamW moments always,
 * fp32 master weights for all parameters or for none (runs that keep bf16 weights only).
 */
export function expectedOptimizerTensors(params: ReadonlyMap<string, readonly number[]>, withMaster: boolean): Map<string, readonly number[]> {
  const m = new Map<string, readonly number[]>();
  for (const kind of OPTIMIZER_KINDS) {
    if (kind === 'master' && !withMaster) continue;
    for (const [name, shape] of params) m.set(optimizerTensorName(kind, name), shape);
  }
  return m;
}

const FORMAT = 'polytune-training-state';

export function encodeState(state: TrainingState): string {
  const check = (v: unknown, path: string): void => {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') throw new Error(`state.json: ${path} is ${typeof v}, which cannot be saved`);
    if (ArrayBuffer.isView(v)) throw new Error(`state.json: ${path} is a typed array; save it as a plain array`);
    if (Array.isArray(v)) v.forEach((x, i) => check(x, `${path}[${i}]`));
    else if (v !== null && typeof v === 'object') {
      if (Object.getPrototypeOf(v) !== Object.prototype) throw new Error(`state.json: ${path} is a ${v.constructor?.name}, not a plain object`);
      for (const [k, x] of Object.entries(v)) {
        if (k.startsWith('$')) throw new Error(`state.json: key '${k}' at ${path} is reserved (keys may not start with '$')`);
        check(x, `${path}.${k}`);
      }
    }
  };
  check(state, 'state');
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new Error(`state.json: step must be a non-negative integer, got ${state.step}`);
  return JSON.stringify({ format: FORMAT, version: 1, ...state }, (_k, v) => {
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return { $number: Object.is(v, -0) ? '-0' : String(v) };
    return v;
  }, 2) + '\n';
}

export function decodeState(text: string, file: string): TrainingState {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text, (_k, v) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const keys = Object.keys(v);
        if (keys.length === 1 && keys[0] === '$bigint') return BigInt(v.$bigint);
        if (keys.length === 1 && keys[0] === '$number') return v.$number === '-0' ? -0 : Number(v.$number);
      }
      return v;
    });
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (raw?.format !== FORMAT) throw new Error(`${file}: not a training state (format is ${JSON.stringify(raw?.format)}, expected '${FORMAT}')`);
  if (raw.version !== 1) throw new Error(`${file}: training state version ${JSON.stringify(raw.version)} is not supported (expected 1)`);
  for (const f of ['step', 'epoch', 'dataPosition', 'schedule', 'rng', 'runConfig'] as const) {
    if (!(f in raw)) throw new Error(`${file}: missing field '${f}'`);
  }
  if (!Number.isSafeInteger(raw.step) || (raw.step as number) < 0) throw new Error(`${file}: field 'step' must be a non-negative integer, got ${JSON.stringify(raw.step)}`);
  if (typeof raw.epoch !== 'number') throw new Error(`${file}: field 'epoch' must be a number, got ${JSON.stringify(raw.epoch)}`);
  const { format: _f, version: _v, ...state } = raw;
  return state as unknown as TrainingState;
}
