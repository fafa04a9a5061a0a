import type { Command } from 'commander';
import { gridTable, loadGridSpec, runGrid } from '../train/grid.js';

/**
 * `grid study.yaml`: every language mixture of one dataset, one after another. The first Ctrl-C
 * lets the running variant save and stop (exit 130; run the grid again to resume it), a second
 * quits at once.
 */
export async function gridCommand(file: string, opts: { dryRun?: boolean }): Promise<void> {
  const spec = loadGridSpec(file);
  let signal: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal) process.exit(130);
    signal = sig;
    console.log(`\n${sig}: stopping the grid: the running variant saves after this step; run the grid again to resume (again: quit at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await runGrid(spec, { shouldStop: () => signal !== undefined, dryRun: opts.dryRun });
    console.log(`\n${gridTable(r.languages, r.variants)}\n`);
    console.log(`grid: ${r.stopped ? 'stopped' : 'done'}; table ${r.files.markdown} (also ${r.files.csv}, ${r.files.json}), chart ${r.files.svg}`);
    if (r.stopped) process.exitCode = signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerGrid(program: Command): void {
  program
    .command('grid')
    .description("Train one dataset under each language mixture (mono per language, all, sampled) and compare their validation losses")
    .argument('<study>', 'study file (YAML or JSON): run (a run config), out, variants, set')
    .option('--dry-run', 'check every variant\'s config and print the plan, without training')
    .action(async (study: string, opts: { dryRun?: boolean }) => gridCommand(study, opts));
}
