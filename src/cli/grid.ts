import type { Command } from 'commander';
import { gridTable, loadGridSpec, runGrid, type VariantJob } from '../train/grid.js';
import { trainCommand } from './train.js';

const STOPPED = new Set([130, 143]);

/**
 * `grid study.yaml`: every language mixture of one dataset, one after another. Each variant trains
 * under the supervisor of `polytune train`: the first Ctrl-C is answered at once and the variant
 * saves after its step (the grid then ends with 130; run it again to resume), a second quits at once.
 */
export async function gridCommand(file: string, opts: { dryRun?: boolean }): Promise<number> {
  const spec = loadGridSpec(file);
  let exit = 0;
  const runVariant = async (job: VariantJob) => {
    const code = await trainCommand({ config: job.run, resume: true, overrides: job.overrides, cwd: process.cwd() });
    if (STOPPED.has(code)) {
      exit = code;
      return { interrupted: true };
    }
    if (code !== 0) throw new Error(`grid: variant ${job.name} failed (exit code ${code}); fix the cause and run the grid again to resume it`);
    return { interrupted: false };
  };
  const r = await runGrid(spec, { dryRun: opts.dryRun, runVariant });
  console.log(`\n${gridTable(r.languages, r.variants)}\n`);
  if (opts.dryRun) console.log(`grid: dry run; every variant's config is valid; nothing was trained or written`);
  else console.log(`grid: ${r.stopped ? 'stopped' : 'done'}; table ${r.files.markdown} (also ${r.files.csv}, ${r.files.json}), chart ${r.files.svg}`);
  return exit;
}

export function registerGrid(program: Command): void {
  program
    .command('grid')
    .description('Train one dataset under each language mixture (mono per language, all, sampled) and compare their validation losses')
    .argument('<study>', 'study file (YAML or JSON): run (a run config), out, variants, set')
    .option('--dry-run', "check every variant's config and print the plan, without training")
    .action(async (study: string, opts: { dryRun?: boolean }) => {
      process.exitCode = await gridCommand(study, opts);
    });
}
