// A peer program driven over stdin/stdout lines, so a bench can interleave it with our code:
// it prints "ready <version>" once, then answers each request line with one line.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LinePeer {
  version: string;
  request(line: string): Promise<string>;
  close(): void;
}

export async function startLinePeer(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<LinePeer | { missing: string }> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string | null) => void)[] = [];
  const early: string[] = [];
  lines.on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else early.push(l);
  });
  const done = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.on('error', () => undefined);
  void done.then(() => waiting.splice(0).forEach((w) => w(null)));
  const next = () => new Promise<string | null>((resolve) => (early.length ? resolve(early.shift()!) : waiting.push(resolve)));
  const ready = await next();
  if (!ready?.startsWith('ready ')) return { missing: `${cmd} did not start: ${ready ?? stderr.trim().split('\n').slice(-3).join(' | ')}` };
  return {
    version: ready.slice(6),
    async request(line) {
      child.stdin.write(line + '\n');
      const reply = await next();
      if (reply === null) throw new Error(`${cmd} exited: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return reply;
    },
    close() {
      child.stdin.end();
      child.kill();
    },
  };
}

/** The number in an "ok <number>" reply; anything else is the peer's error. */
export function okNumber(who: string, reply: string): number {
  if (!reply.startsWith('ok ')) throw new Error(`${who}: ${reply}`);
  return Number(reply.slice(3));
}
