// What a user sees while a run goes: a live bar on a terminal (cli-progress), plain periodic lines
// elsewhere (CI logs, nohup), and the log lines of the run in between.
import { MultiBar, type SingleBar } from 'cli-progress';

export interface StepProgress {
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Trained tokens per second over this step. */
  tokensPerSec: number;
  /** Seconds since this process took its first step. */
  elapsed: number;
  /** Seconds left at this process's pace so far. */
  eta: number;
  rssBytes: number;
}

export interface ProgressReporter {
  /** A line of the run's log (data report, validation, saves). */
  log(line: string): void;
  step(p: StepProgress): void;
  /** Ends the bar; lines after this go straight out. */
  close(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export const formatBytes = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.round(b / 2 ** 20)} MiB`);

export function stepLine(p: StepProgress): string {
  return `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ` +
    `grad-norm ${p.gradNorm.toFixed(3)} ${Math.round(p.tokensPerSec)} tok/s elapsed ${formatDuration(p.elapsed)} ` +
    `eta ${formatDuration(p.eta)} mem ${formatBytes(p.rssBytes)}`;
}

/**
 * Plain lines: step 1, every `every`-th step, the last step, and at least one line per
 * `maxSilenceSec` seconds, so a CI log shows the run is alive without a line per step.
 */
export function plainReporter(write: (line: string) => void, opts: { every: number; maxSilenceSec?: number }): ProgressReporter {
  let last = -Infinity;
  const silence = (opts.maxSilenceSec ?? 30) * 1000;
  return {
    log: write,
    step(p) {
      const now = performance.now();
      if (p.step === 1 || p.step % opts.every === 0 || p.step === p.totalSteps || now - last >= silence) {
        last = now;
        write(stepLine(p));
      }
    },
    close() {},
  };
}

/** A live bar on a terminal; log lines scroll above it. */
export function ttyReporter(stream: NodeJS.WriteStream): ProgressReporter {
  const multi = new MultiBar({
    stream,
    format: 'epoch {ep} {bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | {elapsed} elapsed | ETA {etaText} | {mem}',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: false,
    autopadding: true,
    fps: 5,
  });
  let bar: SingleBar | undefined;
  let closed = false;
  return {
    log(line) {
      if (closed || !bar) stream.write(line + '\n');
      else {
        multi.log(line + '\n');
        multi.update();
      }
    },
    step(p) {
      if (closed) return;
      const payload = {
        ep: `${p.epoch}/${p.epochs}`,
        loss: p.loss.toFixed(4),
        lr: p.lr.toExponential(2),
        tps: Math.round(p.tokensPerSec),
        elapsed: formatDuration(p.elapsed),
        etaText: formatDuration(p.eta),
        mem: formatBytes(p.rssBytes),
      };
      if (!bar) bar = multi.create(p.totalSteps, p.step, payload);
      else bar.update(p.step, payload);
    },
    close() {
      if (closed) return;
      closed = true;
      multi.stop();
    },
  };
}

/** The reporter for a stream: the bar on a terminal, plain lines otherwise. */
export function reporterFor(stream: NodeJS.WriteStream, every: number): ProgressReporter {
  return stream.isTTY ? ttyReporter(stream) : plainReporter((l) => stream.write(l + '\n'), { every });
}
