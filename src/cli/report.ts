import type { Command } from 'commander';

/** `polytune report`: the MT-Bench-X results and training curves as one self-contained HTML page. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('Write one self-contained HTML page (radar plots, win rates, position bias, agreement, training curves, answer browser) and each chart as SVG beside it')
    .requiredOption('--bench-dir <dir>', 'folder holding mt_bench_XX/ (questions, model_answer/, model_judgment/, human_judgment/)')
    .option('--runs <dir...>', 'training run folders (their metrics.jsonl) to plot')
    .option('--lang <XX,...>', 'only these languages (default: every mt_bench_XX folder)')
    .option('--out <file>', 'the HTML page', 'report.html')
    .action(async (o: { benchDir: string; runs?: string[]; lang?: string; out: string }) => {
      const { buildReport } = await import('../report/build.js');
      const r = await buildReport({
        benchDir: o.benchDir,
        runs: o.runs,
        out: o.out,
        langs: o.lang?.split(',').map((l) => l.trim()).filter(Boolean),
      });
      process.stderr.write(`wrote ${r.out} (${r.languages.join(', ')}) and ${r.charts.length} chart(s): ${r.charts.map((c) => c.file).join(', ')}\n`);
    });
}
