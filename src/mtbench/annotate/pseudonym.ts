// Annotators are anonymised by a salted hash: judge = "anno_" + HMAC-SHA256(salt, name)[:12 hex].
// The salt is random, created once per vote file and kept beside it (<votes>.salt, mode 0600), never
// inside it: the same name always maps to the same pseudonym (so annotators resume under their
// name after a restart), while the vote file alone cannot be tied back to a name, not even by
// hashing a list of likely names. Share the .jsonl; keep the .salt with whoever runs the study.
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { replaceFileAtomic } from '../../util/durable.js';

export const PSEUDONYM_RE = /^anno_[0-9a-f]{12}$/;

/** Case, surrounding and repeated spaces and Unicode composition do not make another annotator. */
export function normalizeName(name: string): string {
  return name.normalize('NFC').trim().replace(/\s+/g, ' ').toLowerCase();
}

export function pseudonym(salt: string, name: string): string {
  return 'anno_' + createHmac('sha256', salt).update(normalizeName(name)).digest('hex').slice(0, 12);
}

/**
 * The salt of a vote file. A vote file that already holds votes but has lost its salt would give
 * every returning annotator a new pseudonym, so that is an error rather than a fresh salt.
 */
export function loadOrCreateSalt(voteFile: string, hasVotes: boolean): string {
  const saltFile = voteFile + '.salt';
  if (existsSync(saltFile)) {
    const salt = readFileSync(saltFile, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(salt)) throw new Error(`${saltFile}: not a salt written by polytune (64 hex digits expected)`);
    return salt;
  }
  if (hasVotes) {
    throw new Error(`${voteFile} holds votes but its salt ${saltFile} is missing: restore it so annotators keep their pseudonyms, or pass --out to start a new vote file`);
  }
  const salt = randomBytes(32).toString('hex');
  replaceFileAtomic(saltFile, salt + '\n');
  chmodSync(saltFile, 0o600);
  return salt;
}
