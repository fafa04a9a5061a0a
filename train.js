#!/usr/bin/env node
// `node train.js [config.json] [--resume [checkpoint]]`: the fine-tune launcher, the same as `polytune train`.
import { main } from './dist/src/cli/index.js';

main([process.argv[0], process.argv[1], 'train', ...process.argv.slice(2)]).catch((err) => {
  process.stderr.write(`polytune: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
