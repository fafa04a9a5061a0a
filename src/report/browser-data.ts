// What the answer browser needs, per language: questions, answers, each model's grades and the
// pairwise verdicts (prompts left out: they repeat the answers and would double the page).
import type { BenchLanguage } from '../mtbench/index.js';

export interface BrowserGrade {
  score: number;
  judgment: string;
  judge: string;
}

export interface BrowserGame {
  model_1: string;
  model_2: string;
  g1: string;
  g2: string;
  g1_judgment: string;
  g2_judgment: string;
  judge: string;
}

export interface BrowserLanguage {
  lang: string;
  questions: { id: string; category: string; turns: string[]; reference: string[] | null }[];
  models: string[];
  /** model -> question id -> answer turns */
  answers: Record<string, Record<string, string[]>>;
  /** model -> question id -> turn (1-based, as text) -> grades (one per judge) */
  grades: Record<string, Record<string, Record<string, BrowserGrade[]>>>;
  /** question id -> turn -> games (any pair of models) */
  games: Record<string, Record<string, BrowserGame[]>>;
}

export function browserData(benches: BenchLanguage[]): BrowserLanguage[] {
  return benches.map((b) => {
    const answers: BrowserLanguage['answers'] = {};
    for (const [m, byQ] of b.answers) answers[m] = Object.fromEntries([...byQ].map(([q, a]) => [q, a.turns]));
    const grades: BrowserLanguage['grades'] = {};
    for (const j of b.single) {
      const byQ = (grades[j.model] ??= {});
      const byT = (byQ[String(j.question_id)] ??= {});
      (byT[String(j.turn)] ??= []).push({ score: j.score, judgment: j.judgment, judge: j.judge.join('/') });
    }
    const games: BrowserLanguage['games'] = {};
    for (const g of b.pairwise) {
      const byT = (games[String(g.question_id)] ??= {});
      (byT[String(g.turn)] ??= []).push({
        model_1: g.model_1, model_2: g.model_2, g1: g.g1_winner, g2: g.g2_winner, g1_judgment: g.g1_judgment, g2_judgment: g.g2_judgment, judge: g.judge.join('/'),
      });
    }
    return {
      lang: b.lang,
      questions: b.questions.map((q) => {
        const ref = b.references.get(String(q.questionId))?.turns ?? (q.reference?.length ? q.reference : null);
        return { id: String(q.questionId), category: q.category, turns: q.turns, reference: ref };
      }),
      // Models with grades but no answer file still show their grades and verdicts.
      models: [...new Set([...b.answers.keys(), ...b.single.map((j) => j.model), ...b.pairwise.flatMap((g) => [g.model_1, g.model_2])])].sort(),
      answers,
      grades,
      games,
    };
  });
}
