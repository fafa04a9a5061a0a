/**
 * Multilingual text for training and checking tokenizers, written for these tests:
 * EN/DE/FR/IT/ES prose, code, numbers, emoji, composed and decomposed accents,
 * full-width characters and odd whitespace. Generated deterministically from a seed.
 */

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog while the farmer watches from the porch.',
  'Researchers fine-tuned the model on parallel instruction data for three epochs.',
  "It's 7:45 p.m. and the train to Edinburgh hasn't left yet; we're still waiting.",
  'Please summarize the following article in no more than fifty words.',
  'Der schnelle braune Fuchs springt über den faulen Hund, während es draußen regnet.',
  'Grüße aus München! Die Straßenbahn fährt heute wegen Bauarbeiten nicht über den Marienplatz.',
  'Könnten Sie mir bitte erklären, warum Äpfel und Birnen im Herbst geerntet werden?',
  'Weißt du, dass Übermäßiges Zögern öfter schadet als nützt?',
  "L'élève a réussi l'examen grâce à ses efforts et à l'aide de ses professeurs.",
  'Où se trouve la bibliothèque ? Je voudrais emprunter « Les Misérables » de Victor Hugo.',
  'Ça coûte vingt-cinq euros, mais la qualité est exceptionnelle, n’est-ce pas ?',
  'Noël approche : les enfants décorent le sapin avec des guirlandes dorées.',
  'Il gatto dorme sul divano perché è stanco dopo una lunga giornata al sole.',
  'Perché la città è così affollata? Forse perché c’è il festival della musica.',
  "Dopo l'università, Lucia è partita per Città del Messico con sua sorella.",
  'Più tardi andremo al mercato a comprare pomodori, basilico e mozzarella di bufala.',
  '¿Dónde está la estación de tren? Necesito llegar a Sevilla antes del mediodía.',
  '¡Qué alegría verte! El niño comió paella y bebió zumo de naranja.',
  'La señora Muñoz enseña matemáticas en una escuela pública de Bogotá.',
  'El pingüino caminó despacio por el hielo mientras nevaba en la Antártida.',
  'def add(a: int, b: int) -> int:\n    return a + b  # simple sum',
  'const total = items.reduce((acc, x) => acc + x.price * x.qty, 0);',
  'for (int i = 0; i < n; ++i) { sum += v[i] * w[i]; }',
  'SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;',
  '{"id": 42, "tags": ["a", "b"], "ok": true, "pi": 3.14159}',
  'The invoice total was $1,234,567.89 (VAT 19%) due on 2024-03-15.',
  'Call +49 30 1234567 or +33 1 23 45 67 89 before 08:30.',
  'Version 3.10.12 fixed 1024 bugs; 0.001% of users saw error 0x7FFF.',
  'Ich liebe Pizza 🍕 und Kaffee ☕️, du auch? 😄👍🏽',
  'Family: 👨‍👩‍👧‍👦, flags: 🇩🇪 🇫🇷 🇮🇹 🇪🇸, hearts: ❤️💙💚',
  'Ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ：ＡＢＣ　１２３！',
  'Half-width katakana ｶﾀｶﾅ and ligatures ﬁ ﬂ ﬀ and ½ ² ³ ™ Ⅻ.',
  'Tabs\tand\u00a0non-breaking\u2009thin\u3000ideographic   multiple    spaces.',
  '   leading and trailing spaces   ',
  'Mixed CASE Words Like iPhone, McDonald, and ÉCOLE NORMALE SUPÉRIEURE.',
  'Ελληνικά, русский язык, العربية, עברית, 日本語, 中文 and 한국어 appear here too.',
  'Math: ∑ x² ≤ ∞, α + β = γ, 10 × 3 ÷ 2 ≈ 15, √2 ≠ 1.41.',
];

/** Decomposed (NFD) accents, zero-width and control characters, and rare symbols. */
const SPECIAL = [
  'Cafe\u0301 cre\u0300me bru\u0302le\u0301e, Sen\u0303or, U\u0308ber, na\u0131\u0308ve',
  'Zero\u200bwidth\u200djoiner\u200cnon-joiner\ufeffBOM',
  'Control\u0001chars\u0007here\u001b[0m',
  'Rare: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 ꙮ 𓀀 🦜 ௵ ꧁꧂',
  'Combining on digits: 1\u20e3 2\u20e3 and a\u0328\u0301 stacked e\u0301\u0301\u0301',
  '   ',
  'x',
  '▁already▁escaped▁ text',
  'Ⅷ ㍿ ㈱ ℃ № ℡ ﹖ ﹗ ︙',
];

const WORDS = SENTENCES.flatMap((s) => s.split(/\s+/)).filter((w) => w.length > 0);

/** xorshift32: a tiny deterministic PRNG so the corpus is the same everywhere. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function randomLine(next: () => number): string {
  const n = 3 + Math.floor(next() * 14);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = next();
    if (r < 0.08) words.push(String(Math.floor(next() * 100000)));
    else if (r < 0.1) words.push((next() * 1000).toFixed(2));
    else words.push(WORDS[Math.floor(next() * WORDS.length)]);
  }
  return words.join(next() < 0.1 ? '  ' : ' ');
}

/** Training text: every sentence (also in NFD) plus shuffled mixtures of their words. */
export function trainingCorpus(lines = 3000): string[] {
  const next = rng(12345);
  const out = SENTENCES.map((s) => s.replace(/\n/g, ' '));
  out.push(...out.map((s) => s.normalize('NFD')));
  while (out.length < lines) out.push(randomLine(next));
  return out;
}

/** Check text: sentences, special cases and fresh mixtures (a different seed). No newlines. */
export function testLines(extra = 120): string[] {
  const next = rng(987654);
  const out = [...SENTENCES, ...SPECIAL].map((s) => s.replace(/\n/g, ' '));
  out.push(...SENTENCES.slice(0, 20).map((s) => s.normalize('NFD')));
  for (let i = 0; i < extra; i++) out.push(randomLine(next));
  return out;
}
