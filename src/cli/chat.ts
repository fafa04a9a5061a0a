import { createInterface } from 'node:readline';
import { Command } from 'commander';
import type { Message } from '../data/index.js';
import { Generator } from '../generate/engine.js';
import { loadModel } from '../generate/load.js';
import { addModelOptions, addSamplingOptions, chatPrompt, generationDevice, samplingFrom, type ModelCliOptions, type SamplingCliOptions } from './generate.js';

interface ChatOptions extends ModelCliOptions, SamplingCliOptions {
  system?: string;
  lang: string;
}

const HELP = 'commands: /reset (new conversation), /exit (or Ctrl-D); Ctrl-C stops an answer';

/**
 * One user message per input line; answers stream as they are generated. The conversation is
 * rendered with the checkpoint's chat template each turn, with the model's own earlier answers.
 */
async function chatCommand(o: ChatOptions): Promise<void> {
  const m = await loadModel(o.model, { dtype: o.dtype, template: o.template, device: generationDevice(o) });
  const tty = process.stdin.isTTY === true;
  const maxNew = o.maxNewTokens ?? m.generation.maxNewTokens ?? 512;
  // The cache is allocated whole up front: a 32k-context model would take gigabytes before the first word.
  const gen = new Generator(m.model, m.tokenizer, { slots: 1, maxLen: Math.min(m.model.config.max_position_embeddings, 4096), eos: m.generation.eos });
  const sampling = samplingFrom(o, m);
  const fresh = (): Message[] => (o.system !== undefined ? [{ role: 'system', content: o.system }] : []);
  let messages = fresh();
  let current: AbortController | null = null;
  const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, prompt: tty ? '> ' : '', terminal: tty });
  if (tty) process.stdout.write(`${m.name} (${HELP})\n`);
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  rl.prompt();
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        messages = fresh();
        if (tty) process.stdout.write('(new conversation)\n');
        rl.prompt();
        continue;
      }
      if (text === '') {
        rl.prompt();
        continue;
      }
      messages.push({ role: 'user', content: line });
      let prompt: number[];
      try {
        prompt = chatPrompt(m, messages, o.lang.toUpperCase());
      } catch (e) {
        messages.pop();
        process.stderr.write(`${(e as Error).message}\n`);
        rl.prompt();
        continue;
      }
      const room = gen.decoder.maxLen - prompt.length;
      if (room < 1) {
        messages.pop();
        process.stderr.write(`the conversation fills the ${gen.decoder.maxLen}-token context; /reset to start over\n`);
        rl.prompt();
        continue;
      }
      current = new AbortController();
      const r = await gen.generate({ prompt, maxNewTokens: Math.min(maxNew, room), sampling, signal: current.signal, onText: (d) => process.stdout.write(d) });
      current = null;
      process.stdout.write(r.finishReason === 'abort' ? ' [stopped]\n' : '\n');
      messages.push({ role: 'assistant', content: r.text.trim() });
      rl.prompt();
    }
  } finally {
    rl.close();
    gen.dispose();
    m.dispose();
  }
}

export function registerChat(program: Command): void {
  const cmd = program.command('chat').description("Interactive multi-turn chat in the terminal with the checkpoint's chat template");
  addModelOptions(cmd);
  cmd
    .option('--system <text>', "system message (default: the template's, per language)")
    .option('--lang <code>', 'conversation language (picks the system message)', 'EN');
  addSamplingOptions(cmd);
  cmd.addHelpText('after', `\nIn the chat, ${HELP}.`).action(async (o: ChatOptions) => chatCommand(o));
}
