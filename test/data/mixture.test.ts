import { describe, expect, it } from 'vitest';
import { alignIds, apportion, planMixture, splitByFraction } from '../../src/data/index.js';

const LANGS = ['EN', 'DE', 'FR', 'IT', 'ES'];
const ids = Array.from({ length: 1003 }, (_, i) => `item-${i}`);
const count = <T,>(xs: T[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<T, number>());

describe('mixtures', () => {
  it('sampled: each id exactly once, language counts within 1, same seed same result', () => {
    const m = planMixture(LANGS, ids, 'sampled', 7);
    expect(m.map((x) => x.id)).toEqual(ids);
    const perLang = [...count(m.map((x) => x.lang)).values()];
    expect(perLang).toHaveLength(5);
    expect(Math.max(...perLang) - Math.min(...perLang)).toBeLessThanOrEqual(1);
    expect(planMixture(LANGS, ids, 'sampled', 7)).toEqual(m);
    const other = planMixture(LANGS, ids, 'sampled', 8);
    expect(other.filter((x, i) => x.lang !== m[i].lang).length).toBeGreaterThan(500);
  });
  it('all (ENDEFRITES): every id exactly n times, once per language', () => {
    const m = planMixture(LANGS, ids, 'all', 1);
    expect(m).toHaveLength(ids.length * 5);
    for (const c of count(m.map((x) => x.id)).values()) expect(c).toBe(5);
    expect(new Set(m.filter((x) => x.id === 'item-17').map((x) => x.lang))).toEqual(new Set(LANGS));
  });
  it('mono keeps the one language; weights split the ids by exact shares', () => {
    expect(planMixture(['DE'], ids.slice(0, 3), 'mono', 0)).toEqual(['item-0', 'item-1', 'item-2'].map((id) => ({ id, lang: 'DE' })));
    expect(() => planMixture(['DE', 'EN'], ids, 'mono', 0)).toThrow(/exactly one language/);
    const m = planMixture(['EN', 'DE'], ids.slice(0, 1000), { weights: { EN: 3, DE: 1 } }, 0);
    expect(count(m.map((x) => x.lang))).toEqual(new Map([['EN', 750], ['DE', 250]]));
    expect(apportion(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(apportion(7, [0.5, 0, 0.5])).toEqual([4, 0, 3]);
  });
  it('parallel ids must match across languages unless told to skip (counted)', () => {
    const idsByLang = new Map([['EN', ['a', 'b', 'c']], ['DE', ['c', 'a']]]);
    expect(() => alignIds(['EN', 'DE'], { idsByLang })).toThrow(/1 item id\(s\) of EN \(e\.g\. "b"\)/);
    expect(alignIds(['EN', 'DE'], { idsByLang, onUnmatched: 'skip' })).toEqual({ ids: ['a', 'c'], unmatched: { EN: 1, DE: 0 } });
    expect(() => alignIds(['EN'], { idsByLang: new Map([['EN', ['a', 'a']]]) })).toThrow(/"a" occurs twice in the EN data/);
  });
});

describe('splits by id', () => {
  it('95/5 with no shared id, independent of row order, deterministic', () => {
    const { train, validation } = splitByFraction(ids, 0.05, 3);
    expect(validation).toHaveLength(Math.round(ids.length * 0.05));
    expect(train.length + validation.length).toBe(ids.length);
    const v = new Set(validation);
    expect(train.some((id) => v.has(id))).toBe(false);
    const reversed = splitByFraction([...ids].reverse(), 0.05, 3);
    expect(new Set(reversed.validation)).toEqual(v);
    expect(splitByFraction(ids, 0.05, 4).validation).not.toEqual(validation);
  });
});
