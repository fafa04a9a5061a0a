import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileIfChanged } from '../../util/durable.js';
import { seededRandom } from '../random.js';
import { numberWord } from './numberWords.js';

export const SAMPLE_LANGUAGES = ['EN', 'DE', 'FR', 'IT', 'ES'] as const;
export type SampleLanguage = (typeof SAMPLE_LANGUAGES)[number];

/** A record in the Bactrian-X schema. */
export interface BactrianRecord {
  id: string;
  instruction: string;
  input: string;
  output: string;
}

type Phrase = Record<SampleLanguage, string>;

const ADD: Phrase = { EN: 'What is {a} plus {b}?|{a} plus {b} is {c}.', DE: 'Was ist {a} plus {b}?|{a} plus {b} ist {c}.', FR: 'Combien font {a} plus {b} ?|{a} plus {b} font {c}.', IT: 'Quanto fa {a} più {b}?|{a} più {b} fa {c}.', ES: '¿Cuánto es {a} más {b}?|{a} más {b} es {c}.' };
const MUL: Phrase = { EN: 'What is {a} times {b}?|{a} times {b} is {c}.', DE: 'Was ist {a} mal {b}?|{a} mal {b} ist {c}.', FR: 'Combien font {a} fois {b} ?|{a} fois {b} font {c}.', IT: 'Quanto fa {a} per {b}?|{a} per {b} fa {c}.', ES: '¿Cuánto es {a} por {b}?|{a} por {b} es {c}.' };
const COUNT: Phrase = { EN: 'Count from {a} to {b}.', DE: 'Zähle von {a} bis {b}.', FR: 'Compte de {a} à {b}.', IT: 'Conta da {a} a {b}.', ES: 'Cuenta de {a} a {b}.' };
const WORDS: Phrase = { EN: 'Write the number {a} in words.', DE: 'Schreibe die Zahl {a} in Worten.', FR: 'Écris le nombre {a} en lettres.', IT: 'Scrivi il numero {a} in lettere.', ES: 'Escribe el número {a} en letras.' };
const SPELL: Phrase = { EN: 'Spell the following word letter by letter.', DE: 'Buchstabiere das folgende Wort.', FR: 'Épelle le mot suivant lettre par lettre.', IT: 'Scrivi la parola seguente lettera per lettera.', ES: 'Deletrea la siguiente palabra letra por letra.' };
const CAPITAL: Phrase = { EN: 'What is the capital of {a}?|The capital of {a} is {b}.', DE: 'Was ist die Hauptstadt von {a}?|Die Hauptstadt von {a} ist {b}.', FR: 'Quelle est la capitale {a} ?|La capitale {a} est {b}.', IT: 'Qual è la capitale {a}?|La capitale {a} è {b}.', ES: '¿Cuál es la capital de {a}?|La capital de {a} es {b}.' };

const SPELL_WORDS: Record<SampleLanguage, string[]> = {
  EN: ['cat', 'house', 'water', 'sun', 'tree', 'book', 'apple', 'bread', 'friend', 'school', 'river', 'moon'],
  DE: ['Katze', 'Haus', 'Wasser', 'Sonne', 'Baum', 'Buch', 'Apfel', 'Brot', 'Freund', 'Schule', 'Fluss', 'Mond'],
  FR: ['chat', 'maison', 'eau', 'soleil', 'arbre', 'livre', 'pomme', 'pain', 'ami', 'école', 'rivière', 'lune'],
  IT: ['gatto', 'casa', 'acqua', 'sole', 'albero', 'libro', 'mela', 'pane', 'amico', 'scuola', 'fiume', 'luna'],
  ES: ['gato', 'casa', 'agua', 'sol', 'árbol', 'libro', 'manzana', 'pan', 'amigo', 'escuela', 'río', 'luna'],
};

/** Country (in the form the question needs) and capital, per language. */
const CAPITALS: Record<SampleLanguage, [string, string][]> = {
  EN: [['France', 'Paris'], ['Germany', 'Berlin'], ['Italy', 'Rome'], ['Spain', 'Madrid'], ['Portugal', 'Lisbon'], ['Austria', 'Vienna'], ['Poland', 'Warsaw'], ['Greece', 'Athens']],
  DE: [['Frankreich', 'Paris'], ['Deutschland', 'Berlin'], ['Italien', 'Rom'], ['Spanien', 'Madrid'], ['Portugal', 'Lissabon'], ['Österreich', 'Wien'], ['Polen', 'Warschau'], ['Griechenland', 'Athen']],
  FR: [['de la France', 'Paris'], ["de l'Allemagne", 'Berlin'], ["de l'Italie", 'Rome'], ["de l'Espagne", 'Madrid'], ['du Portugal', 'Lisbonne'], ["de l'Autriche", 'Vienne'], ['de la Pologne', 'Varsovie'], ['de la Grèce', 'Athènes']],
  IT: [['della Francia', 'Parigi'], ['della Germania', 'Berlino'], ["dell'Italia", 'Roma'], ['della Spagna', 'Madrid'], ['del Portogallo', 'Lisbona'], ["dell'Austria", 'Vienna'], ['della Polonia', 'Varsavia'], ['della Grecia', 'Atene']],
  ES: [['Francia', 'París'], ['Alemania', 'Berlín'], ['Italia', 'Roma'], ['España', 'Madrid'], ['Portugal', 'Lisboa'], ['Austria', 'Viena'], ['Polonia', 'Varsovia'], ['Grecia', 'Atenas']],
};

const fill = (s: string, v: Record<string, string | number>) => s.replace(/\{(\w)\}/g, (_, k: string) => String(v[k]));
const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * A small parallel instruction set: item i is the same task with the same numbers in every
 * language (arithmetic, counting, number words, spelling, capitals), under id "sample-0000".
 * Deterministic for (items, seed).
 */
export function generateSample(opts: { items?: number; seed?: number } = {}): Record<SampleLanguage, BactrianRecord[]> {
  const items = opts.items ?? 300;
  const rand = seededRandom(`sample:${opts.seed ?? 0}`);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const out = Object.fromEntries(SAMPLE_LANGUAGES.map((l) => [l, [] as BactrianRecord[]])) as Record<SampleLanguage, BactrianRecord[]>;
  for (let i = 0; i < items; i++) {
    const id = `sample-${String(i).padStart(4, '0')}`;
    const task = i % 6;
    const a = task === 1 ? int(1, 12) : task === 2 ? int(1, 20) : task === 3 ? int(0, 100) : int(0, 50);
    const b = task === 1 ? int(1, 12) : task === 2 ? a + int(2, 7) : int(0, 50);
    const w = int(0, 11), cap = int(0, 7);
    for (const lang of SAMPLE_LANGUAGES) {
      let instruction: string, input = '', output: string;
      if (task === 0 || task === 1) {
        [instruction, output] = fill((task === 0 ? ADD : MUL)[lang], { a, b, c: task === 0 ? a + b : a * b }).split('|');
      } else if (task === 2) {
        instruction = fill(COUNT[lang], { a, b });
        output = Array.from({ length: b - a + 1 }, (_, k) => a + k).join(', ');
      } else if (task === 3) {
        instruction = fill(WORDS[lang], { a });
        output = capitalize(numberWord(lang, a));
      } else if (task === 4) {
        instruction = SPELL[lang];
        input = SPELL_WORDS[lang][w];
        output = [...input].join('-');
      } else {
        const [country, city] = CAPITALS[lang][cap];
        [instruction, output] = fill(CAPITAL[lang], { a: country, b: city }).split('|');
      }
      out[lang].push({ id, instruction, input, output });
    }
  }
  return out;
}

/** Writes the sample as Bactrian-X JSON arrays, `<dir>/<LANG>.json`; returns the paths. */
export async function writeSample(dir: string, opts: { items?: number; seed?: number } = {}): Promise<Record<SampleLanguage, string>> {
  await mkdir(dir, { recursive: true });
  const data = generateSample(opts);
  const paths = {} as Record<SampleLanguage, string>;
  for (const lang of SAMPLE_LANGUAGES) {
    paths[lang] = join(dir, `${lang}.json`);
    writeFileIfChanged(paths[lang], JSON.stringify(data[lang], null, 1) + '\n');
  }
  return paths;
}
