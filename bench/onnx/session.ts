import { cpus } from 'node:os';
import * as ort from 'onnxruntime-node';

export { ort };

export interface SessionOptions {
  /** Intra-op threads; defaults to every core, so ORT is measured at its best on this machine. */
  threads?: number;
  /** 'all' as a user would run ORT; an oracle wants 'disabled', so no fused contrib kernel replaces its ops. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** An ORT CPU session over an in-memory model, with full graph optimisation as a user would run it. */
export async function createSession(model: Uint8Array, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opts.optimization ?? 'all',
    executionMode: 'sequential',
    intraOpNumThreads: opts.threads ?? cpus().length,
    interOpNumThreads: 1,
  });
}

/** Runs one output and returns its f32 data, failing loudly if ORT returned another type. */
export async function runF32(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, output: string): Promise<Float32Array> {
  const result = await session.run(feeds);
  const t = result[output];
  if (!t) throw new Error(`ORT session returned no output '${output}' (got ${Object.keys(result).join(', ')})`);
  if (!(t.data instanceof Float32Array)) throw new Error(`ORT output '${output}' is ${t.type}, expected float32`);
  return t.data;
}

export const ortVersion = (): string => ort.env.versions.node ?? 'unknown';
