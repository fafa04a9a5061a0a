// One training job as the CLI runs it (in the worker process, or in-process from the sources):
// the config (or the demo), the stop requests, the exit code.
import { resolve } from 'node:path';
import { loadRunConfig } from '../train/config.js';
import { EMBEDDED_SOURCE, embeddedDefault } from '../train/embedded.js';
import { runTraining, type TrainPhase } from '../train/loop.js';
import { parseOverride } from '../train/overrides.js';
import { checkStartOver } from '../train/run-folder.js';

export interface TrainJob {
  config?: string;
  resume?: boolean | string;
  overrides: string[];
  cwd: string;
}

export interface WorkerMessage {
  phase: TrainPhase;
  step: number;
  totalSteps: number;
}

export const DEMO_OUT = 'runs/default';

/**
 * Runs the job; returns the exit code: 0 for a finished, paused or early-stopped run, 130 / 143
 * for one stopped by SIGINT / SIGTERM, 1 for an error (printed).
 */
export async function runTrainJob(
  job: TrainJob,
  io: { inProcess: boolean; stopSignal?: () => NodeJS.Signals | undefined; onPhase?: (m: WorkerMessage) => void },
): Promise<number> {
  let signal: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signal) process.exit(sig === 'SIGTERM' ? 143 : 130);
    signal = sig;
    console.error(`\n${sig}: stopping after this step, then saving (send it again to quit at once)`);
  };
  if (io.inProcess) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const stopRequested = () => signal ?? io.stopSignal?.();
  try {
    let cfg;
    let source: string;
    if (job.config) {
      cfg = loadRunConfig(resolve(job.cwd, job.config), job.overrides);
      source = job.config;
    } else {
      const outSet = job.overrides.map((o) => parseOverride(o)).find((o) => o.path.join('.') === 'out');
      const out = resolve(job.cwd, typeof outSet?.value === 'string' ? outSet.value : DEMO_OUT);
      // Checked before the demo writes its data: a folder holding another run is never touched.
      if (!job.resume) checkStartOver(out, EMBEDDED_SOURCE);
      console.log(`polytune: no config given; running the embedded default (tiny model, bundled 5-language sample) in ${out}`);
      cfg = await embeddedDefault(out, { overrides: job.overrides });
      source = EMBEDDED_SOURCE;
    }
    const r = await runTraining(cfg, {
      resume: job.resume,
      source,
      startOver: !job.config && !job.resume,
      shouldStop: () => stopRequested() !== undefined,
      onPhase: (phase, step, totalSteps) => io.onPhase?.({ phase, step, totalSteps }),
    });
    if (r.status === 'interrupted') return { SIGTERM: 143, SIGHUP: 129 }[stopRequested() as string] ?? 130;
    return 0;
  } catch (e) {
    process.stderr.write(`polytune: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    if (io.inProcess) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
