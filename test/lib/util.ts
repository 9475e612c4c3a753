// Helpers shared by kniv's ava tests.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { knivCommand, projectRoot } from '../../qemu/paths.js';

/** The installed command (the bundle), as users run it. */
export const kniv = knivCommand;

/** Run the kniv CLI as a user would; never rejects. */
export function runKniv(args: string[], opts: { cwd?: string } = {}) {
  return execa('node', [kniv, ...args], { cwd: opts.cwd ?? projectRoot, reject: false, all: true, stdin: 'ignore' });
}

/**
 * Starts `kniv start ARGS` and waits for the URL it prints once the service
 * inside the appliance VM is up; its qemu is killed when the test ends, and
 * `output()` is everything it has printed so far.
 */
export async function startKniv(t: ExecutionContext, args: string[]) {
  const child = execa('node', [kniv, 'start', ...args], { reject: false, stdin: 'ignore', all: true });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.all.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /kniv is running inside the appliance VM: (http:\S+)/.exec(output);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error(`kniv start exited early:\n${output}`)));
  });
  const qemu = childrenNamed(child.pid!, 'qemu-system');
  t.teardown(() => {
    for (const pid of qemu) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  return { child, url, qemu, output: () => output };
}

/** Pids of live processes whose parent is `ppid` and whose name starts with `prefix`. */
export function childrenNamed(ppid: number, prefix: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(join('/proc', entry, 'stat'), 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces, so split after ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid && comm.startsWith(prefix) && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}
