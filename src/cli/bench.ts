import { Command, Option } from 'commander';
import type { BenchOptions, BenchSuite } from '../../bench/types.js';

// Each suite loads lazily, so `bench tokenize` never loads the native addon or onnxruntime.
const suites: Record<string, { about: string; load: () => Promise<BenchSuite> }> = {
  ops: { about: 'matmul, attention, cross-entropy, SwiGLU: against oneDNN, onnxruntime-node and the bandwidth bound', load: async () => (await import('../../bench/ops.js')).run },
  step: { about: 'one training step of Llama-shaped models, against PyTorch CPU', load: async () => (await import('../../bench/step.js')).run },
  tokenize: { about: 'encode MB/s on a 250k unigram model, against sentencepiece-js', load: async () => (await import('../../bench/tokenize.js')).run },
  data: { about: 'tokenize-and-cache examples/s, and the cached rerun', load: async () => (await import('../../bench/data.js')).run },
  decode: { about: 'KV-cache decode tokens/s (batch 1, 16) and prefill, against the measured bandwidth bound', load: async () => (await import('../../bench/decode.js')).run },
  checkpoint: { about: 'safetensors save/load GB/s, against a plain file copy', load: async () => (await import('../../bench/checkpoint.js')).run },
};

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('Run a benchmark suite; prints a table and writes JSON')
    .argument('<suite>', `one of: ${Object.keys(suites).join(', ')}`)
    .addOption(new Option('--device <device>', 'backend to measure').choices(['cpu', 'cuda']).default('cpu'))
    .option('--out <file>', 'JSON report path (default bench/results/<suite>.json)')
    .option('--quick', 'small sizes, for a smoke test', false)
    .option('--only <parts>', "comma-separated parts of the ops suite: memory (or bound: cross-entropy and SwiGLU against their bandwidth bound), decode, gemm, attention")
    .addHelpText('after', '\nSuites:\n' + Object.entries(suites).map(([k, v]) => `  ${k.padEnd(11)}${v.about}`).join('\n'))
    .action(async (suite: string, opts: BenchOptions) => {
      const entry = suites[suite];
      if (!entry) throw new Error(`unknown bench suite '${suite}' (choose from ${Object.keys(suites).join(', ')})`);
      if (opts.only !== undefined && suite !== 'ops') throw new Error(`bench ${suite}: --only is an ops option`);
      await (await entry.load())(opts);
    });
}
