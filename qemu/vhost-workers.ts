// vhost-net's workers for a qemu process: on 6.1 kernel threads
// "vhost-<pid>"; from 6.4 on (6.12) vhost_tasks, threads of the same name
// inside qemu's own thread group. A worker sleeps until a queue needs it, so
// its context switches count the times it woke up to move packets.
import { readdirSync, readFileSync } from 'node:fs';

export interface VhostWorker {
  where: 'kthread' | 'qemu thread';
  wakeups: number;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Voluntary and involuntary context switches of the task in `dir`, or undefined once it is gone. */
function wakeups(dir: string): number | undefined {
  const status = read(`${dir}/status`);
  const n = (key: string) => new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(status)?.[1];
  const voluntary = n('voluntary_ctxt_switches');
  const involuntary = n('nonvoluntary_ctxt_switches');
  return voluntary === undefined || involuntary === undefined ? undefined : Number(voluntary) + Number(involuntary);
}

/** The live vhost-net workers of the qemu with this pid. */
export function vhostWorkers(qemuPid: number): VhostWorker[] {
  const name = `vhost-${qemuPid}`;
  const out: VhostWorker[] = [];
  const add = (dir: string, where: VhostWorker['where']) => {
    if (read(`${dir}/comm`).trim() !== name) return;
    const n = wakeups(dir);
    if (n !== undefined) out.push({ where, wakeups: n });
  };
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${qemuPid}/task`);
  } catch {
    // qemu is gone; a 6.1 kthread would still show below
  }
  for (const tid of tasks) add(`/proc/${qemuPid}/task/${tid}`, 'qemu thread');
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) add(`/proc/${pid}`, 'kthread');
  return out;
}

/** Times all of a qemu's vhost-net workers have woken up so far. */
export const vhostWakeups = (qemuPid: number): number => vhostWorkers(qemuPid).reduce((n, w) => n + w.wakeups, 0);
