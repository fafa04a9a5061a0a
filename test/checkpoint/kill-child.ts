// Saves checkpoints in a loop until killed; the parent test SIGKILLs it at chosen phases.
import { writeSync } from 'node:fs';
import { writeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { contentFor, killConfig, lossFor } from './kill-fixture.js';

const [root, start] = process.argv.slice(2);
const store = new CheckpointStore(root, { keepLast: 2 });
for (let step = Number(start); ; step++) {
  const content = contentFor(step);
  store.save(step, (tmp) => writeCheckpoint(tmp, content, { config: killConfig, maxShardBytes: 30_000_000 }), {
    valLoss: lossFor(step),
    onPhase: (phase) => writeSync(1, `${step} ${phase}\n`),
  });
}
