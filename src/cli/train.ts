// `polytune train` / `node train.js`: a thin supervisor around a worker process that trains. The
// supervisor's event loop is never blocked by a native step, so a Ctrl-C is answered at once
// ("finishing step 12/176, then saving") and a second one ends the worker at once.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runTrainJob, type TrainJob, type WorkerMessage } from './train-job.js';

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** What the first Ctrl-C answers, from where the worker last said it was. */
export function stopMessage(sig: NodeJS.Signals, at: WorkerMessage | undefined): string {
  const again = `(${sig === 'SIGINT' ? 'Ctrl-C' : sig} again quits at once without saving)`;
  if (!at || at.phase === 'loading') return `${sig}: stop requested while loading the data and model; stopping before step 1, nothing to save ${again}`;
  if (at.phase === 'saving') return `${sig}: finishing the checkpoint of step ${at.step}, then stopping ${again}`;
  if (at.phase === 'done') return `${sig}: the run is finishing ${again}`;
  if (at.step >= at.totalSteps) return `${sig}: finishing the last step, then saving ${again}`;
  return `${sig}: finishing step ${at.step + 1}/${at.totalSteps}, then saving ${again}`;
}

export async function trainCommand(job: TrainJob): Promise<number> {
  const worker = fileURLToPath(new URL('./train-worker.js', import.meta.url));
  // From the TypeScript sources (tests) there is no compiled worker: train in this process.
  if (!existsSync(worker)) return runTrainJob(job, { inProcess: true });
  const child = fork(worker, [JSON.stringify(job)], { stdio: 'inherit' });
  let at: WorkerMessage | undefined;
  let signalled: NodeJS.Signals | undefined;
  let quitting = false;
  child.on('message', (m: WorkerMessage) => (at = m));
  const onSignal = (sig: NodeJS.Signals) => {
    if (!signalled) {
      signalled = sig;
      process.stderr.write(`\n${stopMessage(sig, at)}\n`);
      if (child.connected) child.send({ stop: sig });
      return;
    }
    process.stderr.write(`\n${sig} again: quitting now, without saving\n`);
    // Reap the killed worker before leaving, or it lingers as a zombie where init does not reap,
    // and its run lock would look held.
    const code = SIGNAL_EXIT[sig] ?? 130;
    quitting = true;
    child.once('exit', () => process.exit(code));
    setTimeout(() => process.exit(code), 2000).unref();
    child.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    return await new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => {
        // Killed from outside (the OOM killer, kill -9): say so, the worker could not.
        if (signal && !quitting) process.stderr.write(`polytune: the training process was killed by ${signal}; the last saved checkpoint is intact (--resume continues from it)\n`);
        resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
      });
      child.on('error', (e) => {
        process.stderr.write(`polytune: could not start the training process: ${e.message}\n`);
        resolve(1);
      });
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

const collect = (v: string, all: string[]) => [...all, v];

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('Fine-tune a Llama model; with no config, runs the embedded default (tiny model, bundled sample)')
    .argument('[config]', 'run config, YAML or JSON (model, tokenizer, data, train, report, out); `polytune config --defaults` prints one')
    .option('--resume [checkpoint]', "continue from the run's latest checkpoint, or from the given checkpoint (folder)")
    .option('--set <key=value>', 'override a setting, e.g. --set train.lr=2e-5 (repeatable)', collect, [])
    .action(async (config: string | undefined, opts: { resume?: boolean | string; set: string[] }) => {
      const code = await trainCommand({ config, resume: opts.resume, overrides: opts.set, cwd: process.cwd() });
      process.exitCode = code;
    });
}
