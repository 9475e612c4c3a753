// Where the service keeps what must outlive it: the token, the database, the
// VMs' run directories. One directory, owned by the service, mode 0700.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** /var/lib/kniv for root; $XDG_STATE_HOME/kniv (~/.local/state/kniv) otherwise. KNIV_STATE_DIR overrides. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KNIV_STATE_DIR) return env.KNIV_STATE_DIR;
  if (process.getuid?.() === 0) return '/var/lib/kniv';
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'kniv');
}

export interface StatePaths {
  dir: string;
  token: string;
  db: string;
  vms: string;
}

export function statePaths(dir: string): StatePaths {
  return { dir, token: join(dir, 'token'), db: join(dir, 'kniv.db'), vms: join(dir, 'vms') };
}

export function prepareStateDir(dir: string): StatePaths {
  const p = statePaths(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  mkdirSync(p.vms, { recursive: true, mode: 0o700 });
  return p;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * The bearer token: read from the token file, or generated (32 random bytes,
 * base64url) and written with mode 0600 on first start. O_EXCL makes two
 * services starting at once agree on one token. A file readable by others is
 * narrowed to 0600; a file that does not hold a token is an error, never
 * silently replaced.
 */
export function loadOrCreateToken(path: string): { token: string; created: boolean } {
  try {
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const token = randomBytes(32).toString('base64url');
    try {
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    return { token, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const token = readFileSync(path, 'utf8').trim();
  if (!TOKEN_RE.test(token)) throw new Error(`${path} does not hold a kniv token; remove it to have a new one generated`);
  return { token, created: false };
}

/** The mode bits of an open file, for tests and checks. */
export function modeOf(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).mode & 0o777;
  } finally {
    closeSync(fd);
  }
}
