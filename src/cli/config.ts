// `polytune config --defaults`: the full default run config, every setting with its meaning, as
// YAML that loads as is. `polytune config run.yaml --set ...`: the config a run would use.
import { Command } from 'commander';
import { Document, isMap, isScalar, stringify, type Pair, type YAMLMap } from 'yaml';
import { DATA_CONFIG_DEFAULTS } from '../data/config.js';
import { STUDY_TRAIN, TRAIN_DOCS, loadRunConfig } from '../train/config.js';

const TOP_DOCS: Record<string, string> = {
  model: 'a Hugging Face model folder (model.safetensors + config.json), a config.json, or a preset (models/: tiny, llama-2-7b, 24eu-7b, teuken-7b)',
  tokenizer: "a SentencePiece .model; default: the model folder's tokenizer.model (required for a preset)",
  data: 'the training data (README: "Data")',
  train: 'optimisation; the defaults are the study\'s',
  report: 'logging beside metrics.jsonl: [] or ["tensorboard"] (event files in <out>/tensorboard)',
  out: 'the run folder; default runs/<config file name> beside the config. Relative paths in a config file resolve against its folder',
};

const DATA_DOCS: Record<string, string> = {
  languages: 'language codes, e.g. [EN, DE, FR, IT, ES]',
  mixture: 'mono (one language), all (every item in every language), sampled (each item once, languages balanced), or {weights: {EN: 2, DE: 1}}',
  seed: 'seed of the mixture, the validation split and the batch order',
  files: 'a pattern with {lang} / {lang_lower}, or a map {EN: en.json, DE: [de1.json, de2.json]}',
  format: 'bactrian, lima or chat',
  validation: '{fraction: f} (validation item ids by a seeded hash) or {file: pattern-or-map}',
  template: 'teuken, llama2, {jinja: tokenizer_config.json}, or {teuken: {systemMessages: {...}}}',
  maxSeqLen: 'longer examples are truncated',
  onInvalid: 'error or skip (counted) for records with a missing or empty field',
  onUnmatched: 'error or skip (counted) for ids missing from some language',
  cacheDir: 'where tokenized data is cached',
};

/** The default run config as a plain object (model and data files are placeholders to edit). */
export function defaultConfig(): Record<string, unknown> {
  return {
    model: 'tiny',
    tokenizer: 'tokenizer.model',
    data: {
      languages: ['EN', 'DE', 'FR', 'IT', 'ES'],
      mixture: 'sampled',
      seed: DATA_CONFIG_DEFAULTS.seed,
      files: 'data/{lang_lower}.json',
      format: DATA_CONFIG_DEFAULTS.format,
      validation: { fraction: DATA_CONFIG_DEFAULTS.validationFraction },
      template: DATA_CONFIG_DEFAULTS.template,
      maxSeqLen: DATA_CONFIG_DEFAULTS.maxSeqLen,
      onInvalid: 'error',
      onUnmatched: 'error',
      cacheDir: '.cache/polytune/tokens',
    },
    train: { ...STUDY_TRAIN },
    report: [],
    out: 'runs/my-run',
  };
}

function comment(map: unknown, docs: Record<string, string>): void {
  if (!isMap(map)) return;
  for (const pair of (map as YAMLMap).items as Pair[]) {
    if (isScalar(pair.key) && docs[String(pair.key.value)]) pair.key.commentBefore = ` ${docs[String(pair.key.value)]}`;
  }
}

export function defaultConfigYaml(): string {
  const doc = new Document(defaultConfig());
  doc.commentBefore = ' polytune run config: every setting with its default. `node train.js this.yaml` runs it;\n' +
    ' `--set train.lr=2e-5` changes one setting on the command line. model, tokenizer and data.files are examples to edit.';
  comment(doc.contents, TOP_DOCS);
  comment(doc.get('data', true), DATA_DOCS);
  comment(doc.get('train', true), TRAIN_DOCS);
  return doc.toString({ lineWidth: 0 });
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('Print the documented default run config, or the config a run would use')
    .argument('[config]', 'a run config (YAML or JSON) to check and print, resolved')
    .option('--defaults', 'print the full default config with every setting documented')
    .option('--set <key=value>', 'override a setting (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--json', 'print JSON instead of YAML')
    .action((config: string | undefined, opts: { defaults?: boolean; set: string[]; json?: boolean }) => {
      if (opts.defaults || !config) {
        process.stdout.write(opts.json ? JSON.stringify(defaultConfig(), null, 2) + '\n' : defaultConfigYaml());
        return;
      }
      const cfg = loadRunConfig(config, opts.set);
      process.stdout.write(opts.json ? JSON.stringify(cfg, null, 2) + '\n' : stringify(cfg, { lineWidth: 0 }));
    });
}
