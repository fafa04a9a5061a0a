// Attention on every ISA path the same source compiles to. The addon runs the vdpbf16ps kernels for
// bf16 on a CPU that has them; on one without (AVX-512 without bf16, AVX2, portable builds) bf16
// takes the fp32-arithmetic tiles, and decoding's one-token path is AVX-512 only. Those paths run
// only here: native/cpu/attention.cc and kv_attention.cc compiled for each, against double-precision
// attention (test/native/attention_check.cc: causal, grouped-query, packed documents, fewer queries
// than keys, forward and backward, decoding over a KV cache) with the op tests' tolerances, and one
// thread against two, bit for bit.
import { describe, expect, it } from 'vitest';
import { canCompileChecks, checksNote, runNativeCheck } from '../helpers/native-check.js';

describe('attention on every ISA path the same source compiles to', () => {
  const paths: [string, string[]][] = [
    ['avx512bf16', ['-march=native']],
    ['avx512', ['-march=native', '-mno-avx512bf16']],
    ['avx2', ['-march=x86-64-v3']],
    ['portable', ['-march=x86-64']],
  ];
  for (const [isa, flags] of paths) {
    it.skipIf(!canCompileChecks)(`${isa} (${flags.join(' ')}): forward, backward and KV-cache decoding in f32 and bf16${checksNote}`, (ctx) => {
      const r = runNativeCheck<{ isa: string; checked: number; bad: number; threadMismatches: number }>(
        'attention_check.cc', ['attention.cc', 'kv_attention.cc'], flags, { env: { ...process.env, OMP_NUM_THREADS: '2' } });
      if (!r) return ctx.skip(`attention ${isa}: this CPU cannot run it, not checked`);
      expect(r.bad).toBe(0);
      expect(r.threadMismatches).toBe(0);
      expect(r.checked).toBe(1405152);
      // -march=native on a CPU without the ISA builds another path: checked all the same, under that name.
      if (r.isa !== isa) return ctx.skip(`attention ${isa}: this CPU builds ${r.isa} for it (checked, see that path's test)`);
    }, 120_000);
  }
});
