import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.js';
import { computeAgreement, summarizeResults, type Vote } from '../../src/mtbench/index.js';
import { judgeApiKey } from '../../src/mtbench/judge.js';
import { writeFixtureBench } from './helpers/fixture-bench.js';
import { markers, startScriptedJudge } from './helpers/scripted-judge.js';

const root = mkdtempSync(join(tmpdir(), 'polytune-mtcli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the CLI in-process and returns what it printed on stdout and stderr. */
async function cli(...args: string[]): Promise<{ out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c) => { out += String(c); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c) => { err += String(c); return true; });
  try {
    await main(['node', 'polytune', ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  return { out, err };
}

describe('polytune mtbench judge / show / agreement', () => {
  it('judges single and pairwise through the CLI with the key from the environment, never printed or written; show prints the tables and the same JSON as summarizeResults', async () => {
    writeFixtureBench(root, 'XX', ['alpha', 'beta']);
    const key = 'sk-cli-secret-9f8e';
    const s = await startScriptedJudge((r) => {
      const user = r.body.messages[1].content;
      if (r.body.messages[0].content.startsWith('Compare')) return { content: markers(user)[0].model === 'alpha' ? '[[A]]' : '[[B]]' };
      return { content: markers(user).pop()!.model === 'alpha' ? '[[9]]' : '[[4]]' };
    });
    const saved = { openai: process.env.OPENAI_API_KEY, judge: process.env.POLYTUNE_TEST_JUDGE_KEY };
    const openaiKey = 'sk-openai-must-stay-home-1a2b';
    process.env.OPENAI_API_KEY = openaiKey;
    process.env.POLYTUNE_TEST_JUDGE_KEY = key;
    try {
      const a = await cli('mtbench', 'judge', '--bench-dir', root, '--lang', 'XX', '--mode', 'single', '--models', 'alpha,beta', '--judge-url', s.url, '--api-key-env', 'POLYTUNE_TEST_JUDGE_KEY', '--judge-model', 'j1', '--parallel', '2', '--no-progress');
      expect(a.out).toBe(`${join(root, 'mt_bench_XX/model_judgment/j1_single.jsonl')}: 16 judgment(s) written, 0 already there (of 16); 0 without a score (-1)\n`);
      expect(s.requests.length).toBe(16);
      expect(s.requests.every((r) => r.authorization === `Bearer ${key}`)).toBe(true);
      // Without --api-key-env a server other than OpenAI's gets no key: the exported OpenAI key stays home.
      const b = await cli('mtbench', 'judge', '--bench-dir', root, '--lang', 'XX', '--mode', 'pairwise', '--models', 'alpha,beta', '--judge-url', s.url, '--judge-model', 'j1', '--no-progress');
      expect(b.out).toContain('8 judgment(s) written');
      expect(s.requests.slice(16).every((r) => r.authorization === undefined)).toBe(true);
      for (const text of [a.out, a.err, b.out, b.err, readFileSync(join(root, 'mt_bench_XX/model_judgment/j1_single.jsonl'), 'utf8'), readFileSync(join(root, 'mt_bench_XX/model_judgment/j1_pair.jsonl'), 'utf8')]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(openaiKey);
      }
    } finally {
      for (const [name, v] of [['OPENAI_API_KEY', saved.openai], ['POLYTUNE_TEST_JUDGE_KEY', saved.judge]] as const) {
        if (v === undefined) delete process.env[name];
        else process.env[name] = v;
      }
      await s.close();
    }
    const json = await cli('mtbench', 'show', '--bench-dir', root, '--json');
    expect(JSON.parse(json.out)).toEqual(JSON.parse(JSON.stringify(await summarizeResults(root))));
    const text = (await cli('mtbench', 'show', '--bench-dir', root)).out;
    expect(text).toMatch(/^XX\s+alpha\s+9\.00\s+9\.00\s+9\.00\s+8\s+0$/m);
    expect(text).toMatch(/^XX\s+beta\s+4\.00\s+4\.00\s+4\.00\s+8\s+0$/m);
    expect(text).toMatch(/^XX\s+alpha\s+all\s+8\s+0\s+0\s+0\s+0\s+0\s+100\.0%\s+100\.0%$/m);
    expect(text).toMatch(/^XX\s+all\s+8\s+8\s+0\s+0\.0%\s+0\s+0\s+0$/m);
  });

  it('agreement: table and JSON, errors named', async () => {
    const votes: Vote[] = [
      { question_id: '81_XX', model_a: 'alpha', model_b: 'beta', winner: 'model_a', judge: 'expert_0', turn: 1 },
      { question_id: '81_XX', model_a: 'beta', model_b: 'alpha', winner: 'model_b', judge: 'expert_1', turn: 1 },
      { question_id: '81_XX', model_a: 'beta', model_b: 'alpha', winner: 'model_a', judge: 'expert_2', turn: 1 },
    ];
    const vf = join(root, 'votes.jsonl');
    writeFileSync(vf, votes.map((v) => JSON.stringify(v)).join('\n') + '\n');
    const jf = join(root, 'mt_bench_XX/model_judgment/j1_pair.jsonl');
    const json = JSON.parse((await cli('mtbench', 'agreement', '--votes', vf, '--judgments', jf, '--questions', join(root, 'mt_bench_XX/question.jsonl'), '--json')).out);
    const { readJudgmentFile } = await import('../../src/mtbench/index.js');
    const expected = computeAgreement(votes, (await readJudgmentFile(jf)).pairwise, { categories: new Map([['81_XX', 'writing'], ['82_XX', 'writing'], ['111_XX', 'math'], ['91_XX', 'roleplay']]) });
    expect(json).toEqual(JSON.parse(JSON.stringify(expected)));
    // The judge (alpha always wins) agrees with two of the three experts on 81_XX turn 1.
    expect(expected.rows.find((r) => r.turn === 1 && r.scope === 'writing')!.judgeHuman!.withTies).toEqual({ agree: 2, total: 3, ratio: 2 / 3 });
    const text = (await cli('mtbench', 'agreement', '--votes', vf, '--judgments', jf)).out;
    expect(text).toMatch(/^1\s+all\s+66\.7% \(2\/3\)/m);
    expect(text).toMatch(/^all\s+-0\.500\s+/m);
    writeFileSync(vf, '{"question_id": 81}\n');
    await expect(cli('mtbench', 'agreement', '--votes', vf)).rejects.toThrow(`${vf}:1: field "model_a" must be a non-empty string`);
  });
});

describe('which key goes to which judge', () => {
  it('sends OPENAI_API_KEY to api.openai.com only, a named variable elsewhere, and no key over http off this machine', () => {
    const saved = { openai: process.env.OPENAI_API_KEY, other: process.env.POLYTUNE_TEST_OTHER_KEY };
    process.env.OPENAI_API_KEY = 'sk-o';
    process.env.POLYTUNE_TEST_OTHER_KEY = 'sk-x';
    try {
      expect(judgeApiKey('https://api.openai.com/v1', {})).toBe('sk-o');
      expect(judgeApiKey('https://judge.example.org/v1', {})).toBeUndefined();
      expect(judgeApiKey('http://127.0.0.1:8000/v1', {})).toBeUndefined();
      expect(judgeApiKey('https://judge.example.org/v1', { apiKeyEnv: 'POLYTUNE_TEST_OTHER_KEY' })).toBe('sk-x');
      expect(judgeApiKey('http://localhost:8000/v1', { apiKeyEnv: 'POLYTUNE_TEST_OTHER_KEY' })).toBe('sk-x');
      expect(() => judgeApiKey('http://gpu-box:8000/v1', { apiKeyEnv: 'POLYTUNE_TEST_OTHER_KEY' })).toThrow('refusing to send an API key over plain http to gpu-box:8000');
      expect(() => judgeApiKey('https://judge.example.org/v1', { apiKeyEnv: 'POLYTUNE_TEST_UNSET_KEY' })).toThrow('POLYTUNE_TEST_UNSET_KEY is not set');
      expect(() => judgeApiKey('not a url', {})).toThrow('is not a URL');
    } finally {
      for (const [name, v] of [['OPENAI_API_KEY', saved.openai], ['POLYTUNE_TEST_OTHER_KEY', saved.other]] as const) {
        if (v === undefined) delete process.env[name];
        else process.env[name] = v;
      }
    }
  });
});
