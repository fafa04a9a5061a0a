// One training step (forward, backward, clipping, AdamW) of Llama-shaped models, ours against
// PyTorch CPU (Debian's python3-torch) on the same shapes, interleaved round by round.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LlamaModel, initLlamaWeights, type LlamaConfig } from '../src/model/index.js';
import { native, withScope } from '../src/tensor/index.js';
import { AdamW, hostBatch, trainStep } from '../src/train/index.js';
import { okNumber, startLinePeer } from './line-peer.js';
import { measureMachine, printMachine } from './machine.js';
import { printTable, writeReport } from './report.js';
import { median } from './timing.js';
import type { BenchSuite } from './types.js';

interface StepCase {
  name: string;
  cfg: LlamaConfig;
  B: number;
  T: number;
}

const llama = (hidden: number, inter: number, layers: number, heads: number, kv: number, vocab: number): LlamaConfig => ({
  hidden_size: hidden, intermediate_size: inter, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kv,
  rms_norm_eps: 1e-5, rope_theta: 10000, vocab_size: vocab, max_position_embeddings: 4096, tie_word_embeddings: false,
});

function cases(quick: boolean): StepCase[] {
  // Sizes a shared 2-core machine runs in minutes with the peer: PyTorch 1.13's CPU bf16 autocast
  // step takes tens of seconds already at h512.
  const xs = { name: 'llama-xs (h256, 2 layers, GQA 4/2, vocab 8k)', cfg: llama(256, 688, 2, 4, 2, 8000), B: 1, T: 128 };
  if (quick) return [xs];
  return [xs, { name: 'llama-s (h512, 4 layers, vocab 32k)', cfg: llama(512, 1376, 4, 8, 8, 32000), B: 1, T: 256 }];
}

/** Debian's torch lives in the system python; a pyenv or venv python3 first on PATH may lack it. */
function pythonWithTorch(): string[] {
  return ['/usr/bin/python3', 'python3'].filter((p) => p === 'python3' || existsSync(p));
}

export const run: BenchSuite = async (opts) => {
  if (opts.device !== 'cpu') throw new Error('bench step measures a CPU training step only; there is no CUDA step benchmark yet');
  const machine = measureMachine(opts.quick);
  printMachine(machine);
  const threads = native().buildInfo().threads;
  const script = [join(import.meta.dirname, '..', '..', 'bench', 'torch', 'step_peer.py'), join(import.meta.dirname, 'torch', 'step_peer.py')].find((p) => existsSync(p))!;
  let torch: Awaited<ReturnType<typeof startLinePeer>> = { missing: 'no python3 found' };
  for (const py of pythonWithTorch()) {
    torch = await startLinePeer(py, [script], { ...process.env, OMP_NUM_THREADS: String(threads) });
    if (!('missing' in torch)) break;
  }
  if ('missing' in torch) console.log(`PyTorch peer skipped (python3 cannot import torch; Debian: apt-get install python3-torch): ${torch.missing}\n`);
  else console.log(`PyTorch peer: torch ${torch.version}, ${threads} threads; bf16 = torch.autocast (fp32 weights), f32 = fp32\n`);

  const rounds = opts.quick ? 2 : 3, perRound = 2;
  const rows: Record<string, string | number>[] = [];
  const results: Record<string, unknown>[] = [];
  for (const c of cases(opts.quick)) {
    for (const dtype of ['bf16', 'f32'] as const) {
      const model = LlamaModel.fromWeights(c.cfg, initLlamaWeights(c.cfg, 1), dtype);
      const opt = new AdamW(model.weights);
      const ids = Int32Array.from({ length: c.B * c.T }, (_, i) => (i * 7919 + 13) % c.cfg.vocab_size);
      const targets = Int32Array.from({ length: c.B * c.T }, (_, i) => ids[(i + 1) % ids.length]);
      const mb = hostBatch(ids, targets, c.B, c.T);
      const step = () => withScope(() => void trainStep(model, opt, [mb], 1e-4));
      step();
      const ours: number[] = [], peer: number[] = [];
      const req = JSON.stringify({ hidden: c.cfg.hidden_size, inter: c.cfg.intermediate_size, layers: c.cfg.num_hidden_layers, heads: c.cfg.num_attention_heads, kv: c.cfg.num_key_value_heads, vocab: c.cfg.vocab_size, B: c.B, T: c.T, dtype, steps: perRound, threads });
      for (let r = 0; r < rounds; r++) {
        const t: number[] = [];
        for (let i = 0; i < perRound; i++) {
          const t0 = performance.now();
          step();
          t.push(performance.now() - t0);
        }
        ours.push(median(t));
        if (!('missing' in torch)) peer.push(okNumber('torch peer', await torch.request(req)));
      }
      model.dispose();
      opt.dispose();
      const tokens = c.B * c.T;
      const row: Record<string, string | number> = { model: c.name, dtype, tokens, 'ours ms': median(ours), 'ours tok/s': (tokens * 1e3) / median(ours) };
      if (peer.length) {
        row['torch ms'] = median(peer);
        row['ours / torch (speed)'] = median(peer) / median(ours);
      }
      rows.push(row);
      console.log(`  ${c.name} ${dtype}: ours ${row['ours ms'] && (row['ours ms'] as number).toFixed(1)} ms${peer.length ? `, torch ${median(peer).toFixed(1)} ms` : ''}`);
      results.push({ ...c, dtype, oursMs: median(ours), torchMs: peer.length ? median(peer) : null });
    }
  }
  if (!('missing' in torch)) torch.close();
  console.log(`one training step (forward + backward + clip + AdamW), ${rounds} interleaved rounds of ${perRound} steps, medians`);
  printTable(rows);
  const path = writeReport('step', opts.out, { machine, torch: 'missing' in torch ? null : torch.version, threads, results });
  console.log(`\nwrote ${path}`);
  return { results };
};
