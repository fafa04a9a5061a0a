// On the GPU machine: the model on the device against Hugging Face transformers on the same weights
// and batch (../shared/device/hf_reference.py, f32, eager attention, no TF32): stories260K (trained
// weights, tied embeddings, GQA, head_dim 8) and a random 2-layer model of Llama-2-7B's shapes
// (hidden 4096, MLP 11008, 32 heads of 128, vocab 32,000).
//   node .device/hf-parity.mjs prepare DIR [names]  writes DIR/<model>/ as a Hugging Face model folder (our
//                                            checkpoint writer, F32) with batch.json
//   python3 hf_reference.py DIR/<model> DIR/<model>/batch.json DIR/<model>/ref --dtype float32
//   node .device/hf-parity.mjs compare DIR [device]
//                                            loads each folder onto the device with our checkpoint
//                                            reader, runs forward and backward, and prints logits, loss
//                                            and the worst gradient as max|ours - HF| / max|HF|
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HostTensor, readCheckpoint, writeCheckpoint } from '../../src/checkpoint/index.js';
import { LlamaModel, llamaParamShapes, makeBatch, type LlamaConfig } from '../../src/model/index.js';
import { Tensor, keep, withScope, type Device } from '../../src/tensor/index.js';
import { randint, rng } from '../helpers/random.js';
import { readLlama2c, toHfRopeLayout } from '../oracle/llama2c.js';
import { host } from '../ops/harness.js';

const LLAMA7B_2L: LlamaConfig = {
  hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 2, num_attention_heads: 32, num_key_value_heads: 32,
  rms_norm_eps: 1e-5, rope_theta: 10000, vocab_size: 32000, max_position_embeddings: 4096, tie_word_embeddings: false,
};
// What each comparison must reach (max|ours - HF| / max|HF|, f32 on both sides).
const TOL = 1e-4;

function prepare(dir: string, only: string[]): void {
  const shared = process.env.POLYTUNE_SHARED ?? path.resolve('../shared');
  const stories = path.join(shared, 'data/stories260k/stories260K.bin');
  const models: [string, LlamaConfig, () => Map<string, Float32Array>, number, number][] = [
    ['llama7b-2layer', LLAMA7B_2L, () => uniformWeights(LLAMA7B_2L, 7), 1, 96],
  ];
  if (existsSync(stories)) {
    const { config, weights } = readLlama2c(stories);
    models.unshift(['stories260k', config, () => toHfRopeLayout(config, weights), 2, 48]);
  } else console.log(`stories260k: skipped (${stories} is absent)`);
  for (const [name, config, weights, B, T] of models) {
    if (only.length && !only.includes(name)) continue;
    const out = path.join(dir, name);
    mkdirSync(out, { recursive: true });
    const shapes = llamaParamShapes(config);
    const params = new Map([...weights()].map(([n, w]) => [n, new HostTensor('f32', shapes.get(n)!, new Uint8Array(w.buffer, w.byteOffset, w.byteLength))]));
    writeCheckpoint(out, { params }, { config, dtype: 'F32' });
    const r = rng(B * T);
    const ids = randint(B * T, config.vocab_size, r);
    const labels = Array.from(ids.slice(1)).concat([-100]);
    for (let i = 0; i < labels.length; i += 7) labels[i] = -100;
    const rows = (a: ArrayLike<number>) => Array.from({ length: B }, (_, b) => Array.from(a).slice(b * T, (b + 1) * T));
    writeFileSync(path.join(out, 'batch.json'), JSON.stringify({ input_ids: rows(ids), labels: rows(labels) }));
    console.log(`${name}: ${out} (B ${B}, T ${T})`);
  }
}

// Uniform weights of a std near 0.02 (norms near 1), from xorshift32: 6.7e8 Gaussian draws in
// JavaScript would take most of a minute, and parity does not care about the distribution.
function uniformWeights(c: LlamaConfig, seed: number): Map<string, Float32Array> {
  let x = seed >>> 0 || 1;
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of llamaParamShapes(c)) {
    const w = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const [base, span] = name.endsWith('norm.weight') ? [1, 0.2] : [0, 0.07];
    for (let i = 0; i < w.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      w[i] = base + span * ((x >>> 0) / 4294967296 - 0.5);
    }
    out.set(name, w);
  }
  return out;
}

function readNpyF32(file: string): Float32Array {
  const b = readFileSync(file);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.subarray(major === 1 ? 10 : 12, start).toString('latin1');
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) throw new Error(`${file}: expected a C-order little-endian f32 array, got ${header}`);
  return new Float32Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + b.byteLength));
}

// Tensor by tensor through a file descriptor: a 7B-shaped model's gradients pass readFileSync's 2 GiB.
function readSafetensorsF32(file: string): Map<string, Float32Array> {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    const head = JSON.parse(json.toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const out = new Map<string, Float32Array>();
    for (const [name, e] of Object.entries(head)) {
      if (name === '__metadata__') continue;
      if (e.dtype !== 'F32') throw new Error(`${file}: ${name} is ${e.dtype}, expected F32`);
      const [lo, hi] = e.data_offsets;
      const t = new Float32Array((hi - lo) / 4);
      const bytes = new Uint8Array(t.buffer);
      for (let at = 0; at < bytes.length; ) {
        const got = readSync(fd, bytes, at, Math.min(1 << 30, bytes.length - at), 8 + n + lo + at);
        if (got === 0) throw new Error(`${file}: ${name} ends at byte ${8 + n + lo + at}, before its ${hi - lo} bytes (truncated file)`);
        at += got;
      }
      out.set(name, t);
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function relMax(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Number.isNaN(a[i]) ? Infinity : Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

function compare(dir: string, device: Device): boolean {
  let ok = true;
  for (const name of ['stories260k', 'llama7b-2layer']) {
    const at = path.join(dir, name);
    if (!existsSync(path.join(at, 'ref', 'loss.json'))) {
      console.log(`${name}: no Hugging Face reference in ${at}/ref (hf_reference.py did not run): FAIL`);
      ok = false;
      continue;
    }
    const batch = JSON.parse(readFileSync(path.join(at, 'batch.json'), 'utf8')) as { input_ids: number[][]; labels: number[][] };
    const ref = JSON.parse(readFileSync(path.join(at, 'ref', 'loss.json'), 'utf8')) as { loss: number; loss_sum: number; count: number };
    const B = batch.input_ids.length;
    const b = makeBatch(Int32Array.from(batch.input_ids.flat()), B, Int32Array.from(batch.labels.flat()));
    const line = withScope(() => {
      const ck = readCheckpoint(at, { alloc: (shape, dtype) => keep(Tensor.empty(shape, dtype, device)), dtype: 'f32', weightsOnly: true });
      const model = new LlamaModel(ck.config.config, ck.params);
      const logits = relMax(host(model.forwardLogits(b)), readNpyF32(path.join(at, 'ref', 'logits.npy')));
      model.zeroGrads();
      const res = model.forwardBackward(b, 1 / b.trainedTokens);
      const loss = Math.abs(res.lossSum / res.count - ref.loss) / Math.abs(ref.loss);
      const hf = readSafetensorsF32(path.join(at, 'ref', 'grads.safetensors'));
      const worst = [...model.grads].map(([n, g]) => [n, hf.has(n) ? relMax(host(g), hf.get(n)!) : Infinity] as const).sort((x, y) => y[1] - x[1])[0];
      const missing = [...hf.keys()].filter((n) => !model.grads.has(n));
      model.dispose();
      const pass = logits <= TOL && loss <= TOL && worst[1] <= TOL && missing.length === 0 && res.count === ref.count;
      ok &&= pass;
      return `${name} on ${device} vs transformers (f32): logits ${logits.toExponential(2)}, loss ${loss.toExponential(2)} ` +
        `(${(res.lossSum / res.count).toFixed(6)} vs ${ref.loss.toFixed(6)}), worst gradient ${worst[1].toExponential(2)} (${worst[0]})` +
        `${missing.length ? `, HF gradients we lack: ${missing.join(', ')}` : ''}: ${pass ? `OK (<= ${TOL})` : 'FAIL'}`;
    });
    console.log(line);
  }
  return ok;
}

const [mode, dir, ...rest] = process.argv.slice(2);
const device = rest[0];
if (mode === 'prepare' && dir) prepare(dir, rest);
else if (mode === 'compare' && dir) process.exitCode = compare(dir, (device ?? 'cuda:0') as Device) ? 0 : 1;
else {
  console.error('usage: hf-parity.mjs prepare DIR | compare DIR [device]');
  process.exitCode = 2;
}
