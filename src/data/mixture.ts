import { keyRank, seededRandom, shuffled } from './random.js';

/**
 * How the per-language parallel files become one training set:
 * - mono: the one configured language;
 * - all: every item in every language (n languages -> n copies of each item, "ENDEFRITES");
 * - sampled: each item exactly once, in one language, language counts within 1 of equal;
 * - weights: each item exactly once, the share of items per language given by the weights.
 */
export type Mixture = 'mono' | 'all' | 'sampled' | { weights: Record<string, number> };

export interface MixtureItem {
  id: string;
  lang: string;
}

export interface ParallelIds {
  /** Item ids of each language in file order. */
  idsByLang: Map<string, readonly string[]>;
  /** 'error' (default): an id missing from some language is an error; 'skip': such ids are left out and counted. */
  onUnmatched?: 'error' | 'skip';
}

export interface AlignedIds {
  /** Ids present in every language, in the order of the first language's file. */
  ids: string[];
  /** Per language, how many of its ids lack a translation in another language and were left out. */
  unmatched: Record<string, number>;
}

/** Intersects the id lists of parallel files; duplicates within a language are an error. */
export function alignIds(languages: readonly string[], src: ParallelIds): AlignedIds {
  const sets = new Map<string, Set<string>>();
  for (const lang of languages) {
    const ids = src.idsByLang.get(lang);
    if (!ids) throw new Error(`mixture: no data for language ${lang}`);
    const set = new Set<string>();
    for (const id of ids) {
      if (set.has(id)) throw new Error(`mixture: id "${id}" occurs twice in the ${lang} data; ids must be unique per language`);
      set.add(id);
    }
    sets.set(lang, set);
  }
  const first = src.idsByLang.get(languages[0])!;
  const ids = first.filter((id) => languages.every((l) => sets.get(l)!.has(id)));
  const common = new Set(ids);
  const unmatched: Record<string, number> = {};
  for (const lang of languages) {
    const n = sets.get(lang)!.size - common.size;
    unmatched[lang] = n;
    if (n > 0 && src.onUnmatched !== 'skip') {
      const example = [...sets.get(lang)!].find((id) => !common.has(id));
      throw new Error(
        `mixture: ${n} item id(s) of ${lang} (e.g. "${example}") are missing from another language; ` +
          `parallel mixtures need every id in every language (set onUnmatched: "skip" to leave them out, counted)`,
      );
    }
  }
  return { ids, unmatched };
}

/** Splits counts of `n` items by weight with the largest-remainder rule, so they sum to exactly n. */
export function apportion(n: number, weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (w / total) * n);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    counts[i]++;
  }
  return counts;
}

/**
 * The (id, language) pairs of a mixture. `ids` must already be aligned (alignIds) for the
 * parallel mixtures; for mono they are the language's own ids. Deterministic for a seed.
 */
export function planMixture(languages: readonly string[], ids: readonly string[], mixture: Mixture, seed: number): MixtureItem[] {
  if (mixture === 'mono') {
    if (languages.length !== 1) throw new Error(`mixture: "mono" needs exactly one language, got ${languages.join(', ')}`);
    return ids.map((id) => ({ id, lang: languages[0] }));
  }
  if (mixture === 'all') return ids.flatMap((id) => languages.map((lang) => ({ id, lang })));
  const rand = seededRandom(`mixture:${seed}`);
  let counts: number[];
  let langs: string[];
  if (mixture === 'sampled') {
    // Which languages get the leftover items when n is not a multiple is part of the seed too.
    langs = shuffled(languages, rand);
    counts = apportion(ids.length, langs.map(() => 1));
  } else {
    langs = [...languages];
    counts = apportion(ids.length, langs.map((l) => mixture.weights[l]));
  }
  const perm = shuffled(ids, rand);
  const langOf = new Map<string, string>();
  let k = 0;
  langs.forEach((lang, i) => {
    for (let c = 0; c < counts[i]; c++) langOf.set(perm[k++], lang);
  });
  return ids.map((id) => ({ id, lang: langOf.get(id)! }));
}

/**
 * Chooses validation ids by a seeded hash rank of the id (not by row), so the choice does
 * not depend on file order and no translation of a validation item lands in training.
 */
export function splitByFraction(ids: readonly string[], fraction: number, seed: number): { train: string[]; validation: string[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`split: validation fraction must be in [0, 1), got ${fraction}`);
  const nVal = Math.round(ids.length * fraction);
  const ranked = ids.map((id) => [keyRank(`split:${seed}`, id), id] as const).sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  const val = new Set(ranked.slice(0, nVal).map((r) => r[1]));
  return { train: ids.filter((id) => !val.has(id)), validation: ids.filter((id) => val.has(id)) };
}
