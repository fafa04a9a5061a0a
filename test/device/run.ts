// Entry of the device test bundle (bench/device-check.sh builds it with rolldown into .device/): the
// cross-backend op tables, the device tests and the model-level CUDA-vs-CPU tests, run by the vitest
// shim. Usage there: node .device/device-tests.mjs [name regex] [--json FILE]
import { writeFileSync } from 'node:fs';
import { runCollected, type Result } from './vitest-shim.js';
import '../ops/harness.test.js';
import '../ops/elementwise.test.js';
import '../ops/rmsnorm.test.js';
import '../ops/rope.test.js';
import '../ops/swiglu.test.js';
import '../ops/embedding.test.js';
import '../ops/matmul.test.js';
import '../ops/cross_entropy.test.js';
import '../ops/adamw.test.js';
import '../ops/attention.test.js';
import '../ops/attention-bf16.test.js';
import '../model/device-parity.test.js';
import '../generate/kv-attention-backends.test.js';
import '../generate/decode-device.test.js';

const args = process.argv.slice(2);
const jsonAt = args.indexOf('--json');
const json = jsonAt >= 0 ? args.splice(jsonAt, 2)[1] : null;
const filter = args[0] ? new RegExp(args[0]) : null;
const mark = { passed: 'ok  ', failed: 'FAIL', skipped: 'skip' } as const;
const results: Result[] = await runCollected(filter, (r) => {
  console.log(`${mark[r.status]} ${r.name}${r.status === 'skipped' ? '' : ` (${r.ms.toFixed(0)} ms)`}`);
  if (r.error) console.log(`     ${r.error.replace(/\n/g, '\n     ')}`);
});
const count = (s: Result['status']) => results.filter((r) => r.status === s).length;
if (json) writeFileSync(json, JSON.stringify(results, null, 1));
console.log(`device tests: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
// A filter that matches nothing has checked nothing: a mistyped rerun must not pass.
if (filter && results.length === 0) console.log(`no test matches ${filter}`);
process.exitCode = count('failed') > 0 || (filter && results.length === 0) ? 1 : 0;
