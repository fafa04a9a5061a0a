// A task travels to the browser as an opaque token and comes back with the vote. It is encrypted
// (AES-256-GCM, key derived from the vote file's salt) so the page cannot reveal which model wrote
// which answer, not even to an annotator reading the network tab, and the server can trust the
// models and sides a vote names. Tokens outlive a server restart because the salt does.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

export interface TaskClaim {
  judge: string;
  questionId: number | string;
  turn: number;
  modelA: string;
  modelB: string;
  aLeft: boolean;
}

export class TaskSealer {
  private readonly key: Buffer;
  constructor(salt: string) {
    this.key = createHmac('sha256', salt).update('polytune annotate task token v1').digest();
  }

  seal(c: TaskClaim): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(c), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The claim, or undefined for a token this vote file's server did not issue. */
  open(token: string): TaskClaim | undefined {
    const raw = Buffer.from(token, 'base64url');
    if (raw.length < 29) return undefined;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      d.setAuthTag(raw.subarray(12, 28));
      return JSON.parse(Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8')) as TaskClaim;
    } catch {
      return undefined;
    }
  }
}
