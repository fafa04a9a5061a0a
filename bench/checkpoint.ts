import { closeSync, copyFileSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { expectedLlamaTensors } from '../src/checkpoint/llama-names.js';
import { fsyncPath } from '../src/util/durable.js';
import type { LlamaConfig } from '../src/model/config.js';
import { Tensor } from '../src/tensor/index.js';
import { measureMachine, printMachine } from './machine.js';
import { printTable, writeReport } from './report.js';
import { median } from './timing.js';
import type { BenchSuite } from './types.js';

// 536M parameters: 1.07 GB in bf16. The quick size is 1/16 of that.
const full: LlamaConfig = { hidden_size: 2048, intermediate_size: 5504, num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 16, rms_norm_eps: 1e-5, rope_theta: 10000, vocab_size: 32000, max_position_embeddings: 2048, tie_word_embeddings: false };
const quick: LlamaConfig = { ...full, hidden_size: 512, intermediate_size: 1376, vocab_size: 8000 };
const CHUNK = 16 << 20;

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

/** Parameters filled with a varied bf16 pattern (content does not matter to I/O, zeros would to a compressing disk). */
function makeParams(cfg: LlamaConfig): Map<string, Tensor> {
  const pattern = new Uint16Array(CHUNK / 2).map((_, i) => 0x3c00 | (Math.imul(i, 2654435761) >>> 22));
  const bytes = new Uint8Array(pattern.buffer);
  return new Map(
    [...expectedLlamaTensors(cfg)].map(([name, shape]) => {
      const t = Tensor.empty(shape, 'bf16');
      for (let off = 0; off < t.nbytes; off += CHUNK) t.writeBytes(off, bytes.subarray(0, Math.min(CHUNK, t.nbytes - off)));
      return [name, t];
    }),
  );
}

/** The peer for loading: read the same file through one reusable buffer and do nothing with it. */
function plainRead(file: string): void {
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  const fd = openSync(file, 'r');
  for (let pos = 0, n; (n = readSync(fd, buf, 0, CHUNK, pos)) > 0; pos += n);
  closeSync(fd);
}

/** A second peer for saving: write the same byte count from memory, then fsync. */
function plainWrite(file: string, bytes: number): void {
  const buf = Buffer.alloc(CHUNK, 0x5a);
  const fd = openSync(file, 'w');
  for (let pos = 0; pos < bytes; ) pos += writeSync(fd, buf, 0, Math.min(CHUNK, bytes - pos), pos);
  fsyncSync(fd);
  closeSync(fd);
}

export const run: BenchSuite = async (opts) => {
  if (opts.device !== 'cpu') throw new Error('bench checkpoint measures disk I/O of host tensors; run it with --device cpu');
  const cfg = opts.quick ? quick : full;
  const root = mkdtempSync(join(tmpdir(), 'polytune-bench-ckpt-'));
  const rows: Record<string, string | number>[] = [];
  try {
    printMachine(measureMachine(true));
    const params = makeParams(cfg);
    const ckpt = join(root, 'ckpt');
    // The save and its fair peer (the same byte count written from memory, then fsync) alternate,
    // so a change in the disk's load hits both; medians over the rounds.
    const rounds = opts.quick ? 1 : 3;
    const saves: number[] = [], writes: number[] = [];
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      rmSync(ckpt, { recursive: true, force: true });
      mkdirSync(ckpt);
      const t = process.hrtime.bigint();
      writeCheckpoint(ckpt, { params }, { config: cfg });
      saves.push(seconds(t));
      bytes = statSync(join(ckpt, 'model.safetensors')).size;
      const w = process.hrtime.bigint();
      plainWrite(join(root, 'plain.bin'), bytes);
      writes.push(seconds(w));
      rmSync(join(root, 'plain.bin'));
    }
    const saveS = median(saves), writeS = median(writes);
    const file = join(ckpt, 'model.safetensors');
    const gb = bytes / 1e9;
    let t0: bigint;

    t0 = process.hrtime.bigint();
    copyFileSync(file, join(root, 'copy.safetensors'));
    fsyncPath(join(root, 'copy.safetensors'));
    const copyS = seconds(t0);
    rmSync(join(root, 'copy.safetensors'));

    t0 = process.hrtime.bigint();
    plainRead(file);
    const readS = seconds(t0);
    // Like a load, this peer also pays for fresh memory (page faults), so it is the fairer one.
    t0 = process.hrtime.bigint();
    readFileSync(file);
    const readAllS = seconds(t0);
    const loads: Record<string, number> = {};
    let rssRatio = 0;
    for (const [label, verify, dtype] of [['load bf16, verify crc32', true, 'bf16'], ['load bf16, no verify', false, 'bf16'], ['load as f32 (convert)', false, 'f32']] as const) {
      const rss0 = process.memoryUsage().rss;
      t0 = process.hrtime.bigint();
      const back = readCheckpoint(ckpt, { alloc: Tensor.empty, verify, dtype });
      loads[label] = seconds(t0);
      if (label === 'load bf16, verify crc32') rssRatio = (process.memoryUsage().rss - rss0) / bytes;
      for (const t of back.params.values()) t.dispose();
    }
    for (const t of params.values()) t.dispose();

    rows.push({ op: 'save BF16 (write + fsync)', GB: gb, seconds: saveS, 'GB/s': gb / saveS, peer: `write same bytes + fsync (${rounds} rounds, interleaved)`, 'peer GB/s': gb / writeS, ratio: writeS / saveS });
    rows.push({ op: 'save BF16 (write + fsync)', GB: gb, seconds: saveS, 'GB/s': gb / saveS, peer: 'copyFileSync + fsync', 'peer GB/s': gb / copyS, ratio: copyS / saveS });
    for (const [label, s] of Object.entries(loads)) {
      rows.push({ op: label, GB: gb, seconds: s, 'GB/s': gb / s, peer: 'readFileSync (new memory)', 'peer GB/s': gb / readAllS, ratio: readAllS / s });
      rows.push({ op: label, GB: gb, seconds: s, 'GB/s': gb / s, peer: 'read into 16 MiB buffer', 'peer GB/s': gb / readS, ratio: readS / s });
    }
    printTable(rows);
    console.log(`ratio = our throughput / peer throughput on the same disk (${root}); loads read a warm page cache, as does their peer.`);
    console.log(`RSS growth while loading: ${rssRatio.toFixed(2)} x the file size (one copy: the tensors themselves).`);
    const path = writeReport('checkpoint', opts.out, { quick: opts.quick, dir: root, checkpointBytes: bytes, rssGrowthPerFileByte: rssRatio, rows });
    console.log(`wrote ${path}`);
    return { rows };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};
