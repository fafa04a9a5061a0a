// Bundles what runs through Node.js on the GPU machine, where there is no npm and what travels is
// capped: the device tests (test/device/run.ts, with `vitest` resolved to the shim) into
// .device/device-tests.mjs, the Hugging Face comparison (test/device/hf-parity.ts), and the CLI with its forked training worker into .device/cli/ (the
// worker is found beside the chunk that forks it, as in dist/). Built by
// `bash bench/device-check.sh --pack`. The addon and the models/ presets are found at run time from
// the package root (the checkout there).
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const external = [/^node:/, /\.node$/];

export default [
  {
    input: here('./run.ts'),
    platform: 'node',
    resolve: { alias: { vitest: here('./vitest-shim.ts') } },
    external,
    output: { file: '.device/device-tests.mjs', format: 'esm', codeSplitting: false },
  },
  {
    input: here('./hf-parity.ts'),
    platform: 'node',
    external,
    output: { file: '.device/hf-parity.mjs', format: 'esm', codeSplitting: false },
  },
  {
    input: { polytune: here('./cli.ts'), 'train-worker': here('../../src/cli/train-worker.ts') },
    platform: 'node',
    external,
    output: { dir: '.device/cli', format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
  },
];
