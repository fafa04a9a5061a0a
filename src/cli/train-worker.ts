// The training process the `train` command's supervisor forks. Stop requests come from the
// supervisor (IPC); a signal that reaches this process directly (a terminal's Ctrl-C goes to the
// whole process group) is a stop request too, answered between steps.
import { runTrainJob, type TrainJob, type WorkerMessage } from './train-job.js';

let stop: NodeJS.Signals | undefined;
const request = (sig: NodeJS.Signals) => (stop ??= sig);
process.on('SIGINT', () => request('SIGINT'));
process.on('SIGTERM', () => request('SIGTERM'));
process.on('SIGHUP', () => request('SIGHUP'));
process.on('message', (m: { stop?: NodeJS.Signals }) => m.stop && request(m.stop));
// The supervisor gone (killed): finish the step, save, and end.
process.on('disconnect', () => request('SIGTERM'));

const job = JSON.parse(process.argv[2]) as TrainJob;
const send = (m: WorkerMessage) => {
  if (process.connected) process.send!(m);
};
const code = await runTrainJob(job, { inProcess: false, stopSignal: () => stop, onPhase: send });
process.disconnect?.();
process.exitCode = code;
