import { describe, expect, it } from 'vitest';
import { collateBatch, IGNORE_INDEX, planBatches, prepareExamples, toPadded, TokenizedSetBuilder } from '../../src/data/index.js';

// Example i: tokens 100*i + t, trained from a per-example split point on.
const lengths = Array.from({ length: 157 }, (_, i) => 3 + ((i * 53) % 90));
// Every tenth example is trained on its last token only, so truncation can leave it with nothing trained.
const split = (i: number) => (i % 10 === 0 ? lengths[i] - 1 : Math.floor(lengths[i] / 2));
const b = new TokenizedSetBuilder(1 << 20);
lengths.forEach((len, i) => b.add(`e${i}`, 'EN', Array.from({ length: len }, (_, t) => 100 * i + t), Array.from({ length: len }, (_, t) => (t >= split(i) ? 1 : 0))));
const set = b.finish();
const MAX = 64;

describe('truncation', () => {
  it('counts truncated examples and dropped tokens, leaves out examples with nothing trained left', () => {
    const prep = prepareExamples(set, MAX);
    let truncated = 0, dropped = 0, trainedDropped = 0, empty = 0;
    lengths.forEach((len, i) => {
      if (len > MAX) { truncated++; dropped += len - MAX; trainedDropped += len - Math.max(MAX, split(i)); }
      if (split(i) >= MAX) empty++;
    });
    expect(prep.stats).toEqual({ examples: 157, truncated, tokensDropped: dropped, trainedTokensDropped: trainedDropped, noTrainedTokensLeft: empty });
    expect(empty).toBeGreaterThan(0);
    expect(prep.indices).toHaveLength(157 - empty);
  });
});

describe.each(['bucket', 'pack'] as const)('%s batches', (mode) => {
  const prep = prepareExamples(set, MAX);
  const plan = planBatches(prep, { mode, batchSize: 8, maxSeqLen: MAX, seed: 1, epoch: 0, groupWindow: 4 });
  it('cover each usable example exactly once, deterministically, differently per epoch', () => {
    expect(plan.flat(2).sort((x, y) => x - y)).toEqual(prep.indices);
    expect(planBatches(prep, { mode, batchSize: 8, maxSeqLen: MAX, seed: 1, epoch: 0, groupWindow: 4 })).toEqual(plan);
    expect(planBatches(prep, { mode, batchSize: 8, maxSeqLen: MAX, seed: 1, epoch: 1, groupWindow: 4 })).not.toEqual(plan);
    for (const batch of plan) {
      expect(batch.length).toBeLessThanOrEqual(8);
      for (const row of batch) {
        expect(row.reduce((s, i) => s + prep.lengths[i], 0)).toBeLessThanOrEqual(MAX);
        if (mode === 'bucket') expect(row).toHaveLength(1);
      }
    }
    if (mode === 'pack') expect(plan.flat().length).toBeLessThan(prep.indices.length * 0.85);
  });
  it('collate: labels, positions, doc ids and cu_seqlens match a per-example reference', () => {
    for (const rows of plan.slice(0, 5)) {
      const batch = collateBatch(set, rows, MAX);
      const expTokens: number[] = [], expLabels: number[] = [], expPos: number[] = [], expDoc: number[] = [], cu = [0];
      rows.flat().forEach((i, d) => {
        const len = Math.min(lengths[i], MAX);
        for (let t = 0; t < len; t++) {
          expTokens.push(100 * i + t);
          expLabels.push(t + 1 < len && t + 1 >= split(i) ? 100 * i + t + 1 : IGNORE_INDEX);
          expPos.push(t);
          expDoc.push(d);
        }
        cu.push(cu[cu.length - 1] + len);
      });
      expect([...batch.ids]).toEqual(expTokens);
      expect(batch.rows).toBe(1);
      expect([...batch.targets]).toEqual(expLabels);
      expect([...batch.positions]).toEqual(expPos);
      expect([...batch.docIds]).toEqual(expDoc);
      expect([...batch.cuSeqlens]).toEqual(cu);
      expect(batch.trainedTokens).toBe(expLabels.filter((l) => l !== IGNORE_INDEX).length);
      const padded = toPadded(batch, 0);
      expect(padded.rows).toBe(rows.length);
      for (let r = 0; r < rows.length; r++) {
        const a = batch.rowStarts[r], e = batch.rowStarts[r + 1];
        expect([...padded.tokens.subarray(r * padded.width, r * padded.width + e - a)]).toEqual(expTokens.slice(a, e));
        expect([...padded.docIds.subarray(r * padded.width + e - a, (r + 1) * padded.width)].every((x) => x === -1)).toBe(true);
      }
    }
  });
});
