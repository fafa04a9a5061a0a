// What a run leaves for people and tools: early stopping with the best checkpoint named,
// summary.json, loss.svg, and TensorBoard event files decoded here without the writer's code.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readMetrics, runTraining, summaryTable, type RunSummary } from '../../src/train/index.js';
import { quiet, smallRun, tempDirs } from './helpers.js';

const tempDir = tempDirs();

/** CRC-32C bit by bit (reflected polynomial 0x82F63B78), independent of the writer's table. */
function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}
const masked = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

type Field = { no: number; wire: number; value: bigint | number | Uint8Array };
/** Protobuf wire format, read by hand: varint, 64-bit, length-delimited, 32-bit fields. */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let i = 0;
  const varint = () => {
    let v = 0n;
    for (let s = 0n; ; s += 7n) {
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << s;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const [no, wire] = [key >>> 3, key & 7];
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1) out.push({ no, wire, value: dv.getFloat64(i, true) }), (i += 8);
    else if (wire === 5) out.push({ no, wire, value: dv.getFloat32(i, true) }), (i += 4);
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, wire, value: buf.subarray(i, i + n) });
      i += n;
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}

/** Every record of a TFRecord file, both CRCs checked; each decoded as a tensorflow.Event. */
function readEvents(file: string): { wallTime: number; step: number; fileVersion?: string; scalars: Record<string, number> }[] {
  const b = readFileSync(file);
  const events = [];
  for (let off = 0; off < b.length; ) {
    const len = Number(b.readBigUInt64LE(off));
    expect(b.readUInt32LE(off + 8)).toBe(masked(crc32cBitwise(b.subarray(off, off + 8))));
    const payload = b.subarray(off + 12, off + 12 + len);
    expect(b.readUInt32LE(off + 12 + len)).toBe(masked(crc32cBitwise(payload)));
    off += 16 + len;
    const ev = { wallTime: 0, step: 0, fileVersion: undefined as string | undefined, scalars: {} as Record<string, number> };
    for (const f of fields(payload)) {
      if (f.no === 1) ev.wallTime = f.value as number;
      else if (f.no === 2) ev.step = Number(f.value);
      else if (f.no === 3) ev.fileVersion = Buffer.from(f.value as Uint8Array).toString();
      else if (f.no === 5) {
        for (const v of fields(f.value as Uint8Array).filter((x) => x.no === 1)) {
          const vf = fields(v.value as Uint8Array);
          const tag = Buffer.from(vf.find((x) => x.no === 1)!.value as Uint8Array).toString();
          ev.scalars[tag] = vf.find((x) => x.no === 2)!.value as number;
        }
      }
    }
    events.push(ev);
  }
  return events;
}

describe('a run with early stopping, validation every N steps and TensorBoard', () => {
  it('stops when validation stops improving, names the best checkpoint, and writes summary.json, loss.svg and events', async () => {
    const dir = tempDir('pt-report-');
    // minDelta 5 nats: no epoch after the first counts as an improvement, so patience 1 stops after epoch 2 of 4.
    const cfg = await smallRun(dir, ['train.epochs=4', 'train.earlyStopping={patience: 1, minDelta: 5}', 'train.evalEvery=4', 'report=[tensorboard]']);
    const lines: string[] = [];
    const r = await runTraining(cfg, { log: (l) => lines.push(l) });
    expect(r.status).toBe('early-stopped');
    expect([r.steps, r.totalSteps]).toEqual([12, 24]);
    expect(lines.join('\n')).toMatch(/early stopping: validation loss has not improved by 5 for 1 epoch; best was epoch [12] \(\d+\.\d{4}\)/);

    const metrics = readMetrics(join(dir, 'metrics.jsonl'));
    expect(metrics.validations.map((v) => v.step)).toEqual([4, 6, 8, 12]) // every 4th step and each epoch end (step 12 is both);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
    expect(summary).toMatchObject({ status: 'early-stopped', steps: 12, totalSteps: 24, epochsCompleted: 2, maxEpochs: 4 });
    expect(summary.epochs).toEqual([
      { epoch: 1, step: 6, validation: metrics.validations[1].validation },
      { epoch: 2, step: 12, validation: metrics.validations[3].validation },
    ]);
    expect(summary.tokensTrained).toBe(metrics.steps.reduce((n, s) => n + s.tokens, 0));
    const bestEpoch = summary.epochs.reduce((a, b) => (b.validation.all < a.validation.all ? b : a));
    expect(summary.best).toEqual({ epoch: bestEpoch.epoch, step: bestEpoch.step, checkpoint: join(dir, 'checkpoints', `checkpoint-${bestEpoch.step}`), validation: bestEpoch.validation });
    expect(JSON.parse(readFileSync(join(dir, 'checkpoints', 'best.json'), 'utf8')).checkpoint).toBe(`checkpoint-${bestEpoch.step}`);
    expect(Object.keys(summary.best!.validation).sort()).toEqual(['DE', 'EN', 'ES', 'FR', 'IT', 'all']);
    // The table printed at the end says the same.
    const table = summaryTable(summary, dir);
    expect(lines.at(-1)).toBe(table);
    expect(table).toContain(`best         epoch ${bestEpoch.epoch} (step ${bestEpoch.step}): ${summary.best!.checkpoint}`);
    expect(table).toMatch(new RegExp(`\\n {4}${bestEpoch.epoch} +${bestEpoch.validation.DE.toFixed(4)}.* \\*\\n`));

    const svg = readFileSync(join(dir, 'loss.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const label of ['train (all languages)', 'validation EN', 'validation DE', 'validation (all)', 'optimizer step']) expect(svg).toContain(label);

    const tbDir = join(dir, 'tensorboard');
    const [file] = readdirSync(tbDir);
    expect(file).toMatch(/^events\.out\.tfevents\.\d+\./);
    const events = readEvents(join(tbDir, file));
    expect(events[0].fileVersion).toBe('brain.Event:2');
    const loss = events.filter((e) => 'train/loss' in e.scalars).map((e) => [e.step, e.scalars['train/loss']]);
    expect(loss).toEqual(metrics.steps.map((s) => [s.step, Math.fround(s.loss!)]));
    const val = events.filter((e) => 'validation/EN' in e.scalars).map((e) => [e.step, e.scalars['validation/EN'], e.scalars['validation/all']]);
    expect(val).toEqual(metrics.validations.map((v) => [v.step, Math.fround(v.validation.EN), Math.fround(v.validation.all)]));
    expect(events.every((e) => e.wallTime > 1.7e9)).toBe(true);

    // A resume of a run that stopped early takes no further step.
    const again = await runTraining(cfg, { log: quiet, resume: true });
    expect([again.status, again.steps]).toEqual(['early-stopped', 12]);
  });
});
