import { Command } from 'commander';
import { loadRunConfig } from '../train/config.js';
import { embeddedDefault } from '../train/embedded.js';
import { runTraining } from '../train/loop.js';

export async function trainCommand(configPath: string | undefined, opts: { resume?: boolean | string }): Promise<void> {
  const cfg = configPath ? loadRunConfig(configPath) : await embeddedDefault();
  if (!configPath) console.log(`polytune: no config given; running the embedded default (tiny model, bundled 5-language sample) in ${cfg.out}`);
  // The first Ctrl-C (or SIGTERM) finishes the current step and saves; a second one exits at once.
  let stop = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop) process.exit(130);
    stop = true;
    console.log(`\n${sig}: saving a checkpoint after this step (again to quit without saving)`);
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
