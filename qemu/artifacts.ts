// Evidence kept for a person to read after a run: the whole serial console of
// a VM whose kernel reported a problem or whose test failed. KNIV_ARTIFACTS
// names the directory (kniv test sets it to build/test-artifacts and shares it
// into the appliance VM at the same path); unset, nothing is kept.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function artifactsDir(): string | undefined {
  const dir = process.env.KNIV_ARTIFACTS;
  return dir === undefined || dir === '' ? undefined : dir;
}

/**
 * Writes `text` as `<name>` in the artifacts directory (`dir`, else
 * KNIV_ARTIFACTS), made unique with the time and this process's pid, and
 * returns the path; undefined when none is configured. Never throws: evidence must not turn into a second failure.
 */
export function keepArtifact(name: string, text: string, dir = artifactsDir()): string | undefined {
  if (dir === undefined) return undefined;
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, '_');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${stamp}-${process.pid}-${safe}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, text);
    return path;
  } catch {
    return undefined;
  }
}
