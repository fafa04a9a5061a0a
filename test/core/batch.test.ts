// The host Batch: what the model checks before anything reaches a device, packed documents through
// the whole model, and every tensor the model and its optimizer make placed on the model's device.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LlamaModel, initLlamaWeights, makeBatch, type Batch } from '../../src/model/index.js';
import { Tensor, withScope } from '../../src/tensor/index.js';
import { AdamW, trainStep } from '../../src/train/index.js';
import { randint, rng } from '../helpers/random.js';
import { TINY } from '../helpers/tiny.js';

const V = TINY.vocab_size, P = TINY.max_position_embeddings;

describe('Batch', () => {
  afterEach(() => vi.restoreAllMocks());

  it('the host validation refuses what the kernels assume away, naming the field', () => {
    const model = LlamaModel.fromWeights(TINY, initLlamaWeights(TINY, 1), 'f32');
    const ids = randint(12, V, rng(2)), targets = randint(12, V, rng(3));
    const ok = makeBatch(ids, 2, targets, { cuSeqlens: new Int32Array([0, 4, 6, 12]) });
    const bad: [string, Batch, RegExp][] = [
      ['an id past the vocabulary', { ...ok, ids: ids.map((x, i) => (i === 5 ? V : x)) }, /batch: ids\[5\] = 61 is outside \[0, 61\) \(vocab_size\)/],
      ['a negative id', { ...ok, ids: ids.map((x, i) => (i === 0 ? -1 : x)) }, /ids\[0\] = -1/],
      ['a target past the vocabulary', { ...ok, targets: targets.map((x, i) => (i === 7 ? V + 3 : x)) }, /targets\[7\] = 64 is outside/],
      ['a wrong trained-token count', { ...ok, trainedTokens: 11 }, /trainedTokens 11 disagrees with the 12 targets/],
      ['a count without targets', { ids, rows: 2, trainedTokens: 3 }, /trainedTokens 3 without targets/],
      ['targets of another length', { ...ok, targets: targets.subarray(1) }, /targets must be an Int32Array of 12/],
      ['a position past the rope table', { ...ok, positions: Int32Array.from({ length: 12 }, (_, i) => (i === 9 ? P : i)) }, /positions\[9\] = 64 is outside \[0, 64\) \(max_position_embeddings\)/],
      ['rows that do not divide the ids', { ...ok, rows: 5 }, /rows 5 must be a positive integer dividing ids.length 12/],
      ['offsets that stop short', { ...ok, cuSeqlens: new Int32Array([0, 4, 10]) }, /cuSeqlens must run from 0 to ids.length 12/],
      ['an empty document', { ...ok, cuSeqlens: new Int32Array([0, 4, 4, 12]) }, /cuSeqlens\[2\] = 4 does not follow cuSeqlens\[1\] = 4/],
      ['a document across two rows', { ...ok, cuSeqlens: new Int32Array([0, 4, 8, 12]) }, /document 1 \[4, 8\) crosses the end of a row of 6 positions/],
    ];
    for (const [what, b, msg] of bad) expect(() => (b.targets ? model.forwardLoss(b) : model.forwardLogits(b)), what).toThrow(msg);
    const long = makeBatch(randint(P + 1, V, rng(4)), 1, new Int32Array(P + 1).fill(-100));
    expect(() => model.forwardLogits(long)).toThrow(/rows of 65 positions exceed max_position_embeddings 64; packed rows give their positions/);
    expect(() => model.forwardLoss(makeBatch(ids, 2))).toThrow(/model: this batch has no targets/);
    // The same row with its positions restarting per document is fine.
    expect(model.forwardLoss({ ...long, cuSeqlens: new Int32Array([0, 40, P + 1]), positions: Int32Array.from({ length: P + 1 }, (_, i) => (i < 40 ? i : i - 40)) }).count).toBe(0);
    expect(model.forwardLoss(ok).count).toBe(12);
    model.dispose();
  });

  it('a packed row gives the loss and every gradient of its documents run one by one (f32)', () => {
    const weights = initLlamaWeights(TINY, 5, 0.3);
    const lens = [1, 9, 4, 13];
    const N = lens.reduce((a, b) => a + b);
    const r = rng(6);
    const ids = randint(N, V, r), targets = randint(N, V, r);
    targets[2] = -100;
    const cu = [0];
    for (const n of lens) cu.push(cu[cu.length - 1] + n);
    const positions = new Int32Array(N);
    for (let d = 0; d < lens.length; d++) for (let i = cu[d]; i < cu[d + 1]; i++) positions[i] = i - cu[d];
    withScope(() => {
      const packed = LlamaModel.fromWeights(TINY, weights, 'f32');
      packed.zeroGrads();
      const whole = packed.forwardBackward(makeBatch(ids, 1, targets, { positions, cuSeqlens: Int32Array.from(cu) }), 1);
      const alone = LlamaModel.fromWeights(TINY, weights, 'f32');
      alone.zeroGrads();
      let lossSum = 0, count = 0;
      for (let d = 0; d < lens.length; d++) {
        const part = (a: Int32Array) => a.slice(cu[d], cu[d + 1]);
        const res = alone.forwardBackward(makeBatch(part(ids), 1, part(targets)), 1);
        lossSum += res.lossSum;
        count += res.count;
      }
      expect(whole.count).toBe(N - 1);
      expect(count).toBe(N - 1);
      expect(whole.lossSum).toBeCloseTo(lossSum, 4);
      for (const [name, g] of packed.grads) {
        const a = g.toArray() as Float32Array, b = alone.grads.get(name)!.toArray() as Float32Array;
        let worst = 0, mag = 0;
        for (let i = 0; i < a.length; i++) [worst, mag] = [Math.max(worst, Math.abs(a[i] - b[i])), Math.max(mag, Math.abs(b[i]))];
        expect(worst, name).toBeLessThanOrEqual(1e-5 * Math.max(1, mag));
      }
      packed.dispose();
      alone.dispose();
    });
  });

  it('every tensor the model, its optimizer and a step create is placed on the model device, named explicitly', () => {
    // Only 'cpu' runs here, so a tensor that falls back to the default device would pass unseen:
    // the spies record the device each constructor was given, and 'default' where none was.
    const seen = new Map<string, number>();
    const record = (fn: 'empty' | 'zeros' | 'full' | 'fromArray', at: number) => {
      const orig = Tensor[fn] as (...a: unknown[]) => Tensor;
      vi.spyOn(Tensor, fn).mockImplementation((...a: unknown[]) => {
        const key = `${fn} on ${(a[at] as string | undefined) ?? 'default'}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        return orig.apply(Tensor, a);
      });
    };
    record('empty', 2);
    record('zeros', 2);
    record('full', 3);
    record('fromArray', 3);
    const model = LlamaModel.fromWeights(TINY, initLlamaWeights(TINY, 7), 'bf16', { checkpointing: true }, 'cpu');
    const opt = new AdamW(model.weights);
    const ids = randint(2 * 8, V, rng(8));
    withScope(() => trainStep(model, opt, [makeBatch(ids, 2, randint(2 * 8, V, rng(9)), { cuSeqlens: new Int32Array([0, 3, 8, 16]) })], 1e-3));
    withScope(() => model.forwardLogits(makeBatch(ids, 2)));
    vi.restoreAllMocks();
    expect([...seen.keys()].filter((k) => !k.endsWith(` on ${model.device}`))).toEqual([]);
    for (const fn of ['empty', 'zeros', 'fromArray']) expect(seen.get(`${fn} on cpu`), fn).toBeGreaterThan(0);
    const owned = [...model.params.values(), ...model.grads.values(), ...model.weights.flats, ...model.gradArenas.flats, ...opt.stateFlats()];
    expect(owned.filter((t) => t.device !== model.device).map((t) => t.describe())).toEqual([]);
    model.dispose();
    opt.dispose();
  });
});
