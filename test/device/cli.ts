// The polytune CLI as a bundle entry for the GPU machine (bench/device-check.sh runs `devices` and a
// short `train` on CUDA and on the CPU through it); the same as bin/polytune.
import { main } from '../../src/cli/index.js';

main(process.argv).catch((e) => {
  process.stderr.write(`polytune: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
