/** What every benchmark suite receives from `polytune bench <suite>`. */
export interface BenchOptions {
  device: 'cpu' | 'cuda';
  /** Where the JSON report goes; each suite picks a default under bench/results/. */
  out?: string;
  /** A smaller run for smoke tests; the figures are then not for the note. */
  quick: boolean;
  /** Comma-separated parts of a suite to run (`bench ops --only gemm`, `--only bound`: cross-entropy
   * and SwiGLU against their bandwidth bound); all when absent. */
  only?: string;
}

/** A suite prints its own table and returns the report it wrote as JSON. */
export type BenchSuite = (opts: BenchOptions) => Promise<Record<string, unknown>>;
