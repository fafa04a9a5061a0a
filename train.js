#!/usr/bin/env node
// `node train.js [config.yaml|json] [--resume [checkpoint]] [--set key=value ...]`: the fine-tune
// launcher, the same as `polytune train`. Exit status: 0 finished (or paused, or stopped early by
// validation), 130 / 143 stopped by SIGINT / SIGTERM, 1 an error.
import { main } from './dist/src/cli/index.js';

main([process.argv[0], process.argv[1], 'train', ...process.argv.slice(2)]).catch((err) => {
  process.stderr.write(`polytune: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
