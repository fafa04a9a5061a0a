import type { Command } from 'commander';

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port ${v}: expected 0-65535`);
  return n;
}

/** `mtbench annotate`: the human-evaluation web app (registered by src/cli/mtbench.ts). */
export function addMtbenchAnnotate(mtbench: Command): void {
  mtbench
    .command('annotate')
    .description('Serve the pairwise human-evaluation page; votes go to a FastChat human-judgment JSONL')
    .requiredOption('--bench-dir <dir>', 'folder holding mt_bench_XX/ (question.jsonl, model_answer/, reference_answer/)')
    .requiredOption('--lang <XX>', 'benchmark language: EN, DE, FR, IT or ES (also the language of the page)')
    .requiredOption('--models <A,B,...>', 'models to compare (answer files model_answer/<model>.jsonl), at least two')
    .option('--port <n>', 'port (0: any free one)', parsePort, 8765)
    .option('--host <addr>', 'address to listen on; anything but loopback lets other machines vote', '127.0.0.1')
    .option('--out <file>', 'vote file (default <bench-dir>/mt_bench_XX/human_judgment/votes.jsonl)')
    .action(async (o: { benchDir: string; lang: string; models: string; port: number; host: string; out?: string }) => {
      const { startAnnotationServer } = await import('../mtbench/annotate/server.js');
      const server = await startAnnotationServer({
        benchDir: o.benchDir,
        lang: o.lang,
        models: o.models.split(',').map((m) => m.trim()).filter(Boolean),
        port: o.port,
        host: o.host,
        out: o.out,
      });
      process.stderr.write(`open ${server.url} (Ctrl-C to stop; every vote is already on disk)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
