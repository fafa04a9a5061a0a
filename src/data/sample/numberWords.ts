/** Cardinal number words 0..100 in the five sample languages, written out by rule. */
const EN_ONES = 'zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen'.split(' ');
const EN_TENS = ',,twenty,thirty,forty,fifty,sixty,seventy,eighty,ninety'.split(',');
const DE_ONES = 'null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn'.split(' ');
const DE_TENS = ',,zwanzig,dreißig,vierzig,fünfzig,sechzig,siebzig,achtzig,neunzig'.split(',');
const FR_ONES = 'zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize'.split(' ');
const FR_TENS = ',,vingt,trente,quarante,cinquante,soixante'.split(',');
const IT_ONES = 'zero uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici quindici sedici diciassette diciotto diciannove'.split(' ');
const IT_TENS = ',,venti,trenta,quaranta,cinquanta,sessanta,settanta,ottanta,novanta'.split(',');
const ES_ONES = 'cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis diecisiete dieciocho diecinueve'.split(' ');
const ES_TWENTIES = 'veinte veintiuno veintidós veintitrés veinticuatro veinticinco veintiséis veintisiete veintiocho veintinueve'.split(' ');
const ES_TENS = ',,,treinta,cuarenta,cincuenta,sesenta,setenta,ochenta,noventa'.split(',');

function en(n: number): string {
  if (n === 100) return 'one hundred';
  if (n < 20) return EN_ONES[n];
  return EN_TENS[Math.floor(n / 10)] + (n % 10 ? '-' + EN_ONES[n % 10] : '');
}

function de(n: number): string {
  if (n === 100) return 'hundert';
  if (n < 20) return DE_ONES[n];
  const u = n % 10;
  return u ? (u === 1 ? 'ein' : DE_ONES[u]) + 'und' + DE_TENS[Math.floor(n / 10)] : DE_TENS[n / 10];
}

function fr(n: number): string {
  if (n === 100) return 'cent';
  if (n < 17) return FR_ONES[n];
  if (n < 20) return 'dix-' + FR_ONES[n - 10];
  if (n < 70) {
    const base = FR_TENS[Math.floor(n / 10)], u = n % 10;
    return u === 0 ? base : u === 1 ? `${base} et un` : `${base}-${FR_ONES[u]}`;
  }
  if (n < 80) return n === 71 ? 'soixante et onze' : 'soixante-' + fr(n - 60);
  return n === 80 ? 'quatre-vingts' : 'quatre-vingt-' + fr(n - 80);
}

function it(n: number): string {
  if (n === 100) return 'cento';
  if (n < 20) return IT_ONES[n];
  const tens = IT_TENS[Math.floor(n / 10)], u = n % 10;
  if (u === 0) return tens;
  // The tens word loses its vowel before uno and otto; tre takes an accent at the end of a compound.
  if (u === 1 || u === 8) return tens.slice(0, -1) + IT_ONES[u];
  return tens + (u === 3 ? 'tré' : IT_ONES[u]);
}

function es(n: number): string {
  if (n === 100) return 'cien';
  if (n < 20) return ES_ONES[n];
  if (n < 30) return ES_TWENTIES[n - 20];
  const u = n % 10;
  return ES_TENS[Math.floor(n / 10)] + (u ? ' y ' + ES_ONES[u] : '');
}

const BY_LANG: Record<string, (n: number) => string> = { EN: en, DE: de, FR: fr, IT: it, ES: es };

export function numberWord(lang: string, n: number): string {
  const f = BY_LANG[lang];
  if (!f) throw new Error(`numberWord: no number words for language ${lang}`);
  if (!(Number.isInteger(n) && n >= 0 && n <= 100)) throw new Error(`numberWord: ${n} is outside 0..100`);
  return f(n);
}
