#!/usr/bin/env node
import { main } from '../dist/src/cli/index.js';

main(process.argv).catch((err) => {
  process.stderr.write(`polytune: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
