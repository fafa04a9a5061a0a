import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadRunConfig } from '../train/config.js';
import { embeddedDefault } from '../train/embedded.js';
import { runTraining } from '../train/loop.js';

export async function trainCommand(configPath: string | undefined, opts: { resume?: boolean | string }): Promise<void> {
  const cfg = configPath ? loadRunConfig(configPath) : await embeddedDefault();
  if (!configPath) {
    console.log(`polytune: no config given; running the embedded default (tiny model, bundled 5-language sample) in ${cfg.out}`);
    // The demo starts over each time unless asked to resume: the previous demo's checkpoints go.
    if (!opts.resume) {
      rmSync(join(cfg.out, 'checkpoints'), { recursive: true, force: true });
      rmSync(join(cfg.out, 'metrics.jsonl'), { force: true });
    }
  }
  // The first Ctrl-C (or SIGTERM) finishes the current step and saves. The handler then steps
  // aside, so a second signal gets Node's default action and ends the process at once, even in the
  // middle of a long native op (handlers only run between steps).
  let stop = false;
  const onSignal = (sig: NodeJS.Signals) => {
    stop = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    console.log(`\n${sig}: saving a checkpoint after this step (send it again to quit without saving)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await runTraining(cfg, { resume: opts.resume, shouldStop: () => stop });
    console.log(`done: ${r.steps}/${r.totalSteps} steps; last checkpoint ${r.checkpoint}` +
      (r.best ? `; best ${r.best.path} (validation loss ${r.best.valLoss.toFixed(4)})` : ''));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('Fine-tune a Llama model; with no config, runs the embedded default')
    .argument('[config]', 'run config JSON (model, tokenizer, data, train, out)')
    .option('--resume [checkpoint]', "continue from the run's latest checkpoint, or from the given checkpoint (folder)")
    .action(async (config: string | undefined, opts: { resume?: boolean | string }) => trainCommand(config, opts));
}
