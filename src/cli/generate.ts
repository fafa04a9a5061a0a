import { Command, Option } from 'commander';
import { encodeConversation, type Message } from '../data/index.js';
import { Generator } from '../generate/engine.js';
import { loadModel, type LoadedModel } from '../generate/load.js';
import type { SamplingParams } from '../generate/sampling.js';
import type { Device } from '../tensor/index.js';
import { DEVICE_SETTING, pickDevice, type DeviceSetting } from '../train/device.js';

/** Options shared by generate, chat and serve. */
export interface ModelCliOptions {
  model: string;
  template?: string;
  dtype: 'bf16' | 'f32';
  device: DeviceSetting;
}

export interface SamplingCliOptions {
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  maxNewTokens?: number;
}

export const num = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: expected a number, got "${v}"`);
  return n;
};
export const int = (flag: string) => (v: string): number => {
  const n = num(flag)(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${flag}: expected an integer, got "${v}"`);
  return n;
};

export function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--model <dir>', 'Hugging Face model folder, checkpoint, or run checkpoints folder (its latest)')
    .option('--template <name>', "chat template: the folder's chat_template (default), teuken, llama2, or a tokenizer_config.json")
    .addOption(new Option('--dtype <dtype>', 'weights in memory').choices(['bf16', 'f32']).default('bf16'))
    .addOption(new Option('--device <device>', 'auto (the first GPU where this build has CUDA, else cpu), cpu, cuda or cuda:N').argParser(deviceSetting).default('auto'));
}

function deviceSetting(v: string): DeviceSetting {
  if (!DEVICE_SETTING.test(v)) throw new Error(`--device: expected auto, cpu, cuda or cuda:N, got "${v}"`);
  return v as DeviceSetting;
}

/** The device --device names, by train.device's rules (an explicit cuda that cannot be had is an error); says which on stderr. */
export function generationDevice(o: Pick<ModelCliOptions, 'device'>): Device {
  const { device, why } = pickDevice(o.device, '--device');
  process.stderr.write(`${why}\n`);
  return device;
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--temperature <t>', 'sampling temperature; below 1e-4 is greedy (default: generation_config.json, else greedy)', num('--temperature'))
    .option('--top-p <p>', 'nucleus sampling mass', num('--top-p'))
    .option('--top-k <k>', 'sample from the k most likely tokens (0 = all)', int('--top-k'))
    .option('--repetition-penalty <r>', 'penalty on tokens already in the sequence (1 = none)', num('--repetition-penalty'))
    .option('--seed <s>', 'random seed (reproducible sampling)', int('--seed'))
    .option('--max-new-tokens <n>', 'tokens to generate at most', int('--max-new-tokens'));
}

/** Flags over the folder's generation_config.json defaults. A temperature flag alone turns sampling on, with HF's top_k 50. */
export function samplingFrom(opts: SamplingCliOptions, m: LoadedModel): SamplingParams {
  const d = m.generation.defaults;
  const sampling = opts.temperature !== undefined && opts.temperature >= 1e-4 && (d.temperature ?? 0) < 1e-4;
  return {
    temperature: opts.temperature ?? d.temperature,
    topP: opts.topP ?? d.topP ?? 1,
    topK: opts.topK ?? d.topK ?? (sampling ? 50 : 0),
    repetitionPenalty: opts.repetitionPenalty ?? d.repetitionPenalty ?? 1,
    seed: opts.seed,
  };
}

export function chatPrompt(m: LoadedModel, messages: Message[], lang: string): number[] {
  if (!m.template) {
    throw new Error(`${m.dir}: has no chat_template in tokenizer_config.json; pass --template teuken|llama2|<tokenizer_config.json>`);
  }
  return encodeConversation(m.tokenizer, m.template, { id: 'prompt', lang, messages }, { generationPrompt: true }).ids;
}

interface GenerateOptions extends ModelCliOptions, SamplingCliOptions {
  prompt?: string;
  inputIds?: string;
  chat: boolean;
  system?: string;
  lang: string;
  stop?: string[];
  output: 'text' | 'ids' | 'json';
}

export function parseIdList(text: string, what: string): number[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${what}: not a JSON array of token ids: ${text.slice(0, 80)}`);
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x >= 0)) throw new Error(`${what}: expected a non-empty JSON array of token ids`);
  return v as number[];
}

async function generateCommand(opts: GenerateOptions): Promise<void> {
  if ((opts.prompt === undefined) === (opts.inputIds === undefined)) throw new Error('generate: give exactly one of --prompt and --input-ids');
  if (opts.inputIds !== undefined && opts.chat) throw new Error('generate: --input-ids are fed as given; --chat needs --prompt');
  const m = await loadModel(opts.model, { dtype: opts.dtype, template: opts.template, device: generationDevice(opts) });
  try {
    let prompt: number[];
    if (opts.inputIds !== undefined) prompt = parseIdList(opts.inputIds, '--input-ids');
    else if (opts.chat) {
      const messages: Message[] = opts.system !== undefined ? [{ role: 'system', content: opts.system }] : [];
      prompt = chatPrompt(m, [...messages, { role: 'user', content: opts.prompt! }], opts.lang.toUpperCase());
    } else {
      // A plain prompt starts with BOS, as Hugging Face's Llama tokenizer encodes it.
      prompt = [...(m.generation.bos !== undefined ? [m.generation.bos] : []), ...m.tokenizer.encode(opts.prompt!)];
    }
    const maxNew = opts.maxNewTokens ?? m.generation.maxNewTokens ?? 256;
    const maxLen = Math.min(m.model.config.max_position_embeddings, prompt.length + maxNew);
    const gen = new Generator(m.model, m.tokenizer, { slots: 1, maxLen, eos: m.generation.eos });
    const stream = opts.output === 'text';
    const t0 = performance.now();
    const r = await gen.generate({
      prompt,
      maxNewTokens: maxNew,
      sampling: samplingFrom(opts, m),
      stop: opts.stop,
      onText: stream ? (d) => process.stdout.write(d) : undefined,
    });
    const seconds = (performance.now() - t0) / 1000;
    gen.dispose();
    if (opts.output === 'text') process.stdout.write('\n');
    else if (opts.output === 'ids') process.stdout.write(JSON.stringify(r.ids) + '\n');
    else {
      process.stdout.write(JSON.stringify({
        prompt_ids: prompt, ids: r.ids, text: r.text, finish_reason: r.finishReason,
        prompt_tokens: r.promptTokens, completion_tokens: r.ids.length, seconds: Number(seconds.toFixed(3)),
      }) + '\n');
    }
  } finally {
    m.dispose();
  }
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('Generate text from a model folder (KV-cache decoding); text streams as it is generated');
  addModelOptions(cmd);
  cmd
    .option('--prompt <text>', 'prompt text (BOS prepended; with --chat, the user message)')
    .option('--input-ids <json>', 'prompt token ids as a JSON array, fed as given (no template, no BOS added)')
    .option('--chat', "wrap the prompt in the checkpoint's chat template", false)
    .option('--system <text>', 'system message for --chat (default: the template\'s, per language)')
    .option('--lang <code>', 'conversation language for --chat (picks the system message)', 'EN')
    .option('--stop <text...>', 'stop strings (not included in the output)');
  addSamplingOptions(cmd);
  cmd
    .addOption(new Option('--output <kind>', 'text (streamed), ids (one JSON array), or json').choices(['text', 'ids', 'json']).default('text'))
    .action(async (opts: GenerateOptions) => generateCommand(opts));
}
