// What the VM tests that build network namespaces share.
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { kniModulePath } from '../../qemu/kernels.js';
import { release } from 'node:os';
import { waitFor } from './util.js';

/** A shell command in network namespace ns ('' for this one); never rejects. */
export const nsExec = (ns: string, cmd: string) =>
  ns ? execa('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { all: true, reject: false }) : execa('sh', ['-c', cmd], { all: true, reject: false });

/** (Re)loads kni.ko in a kthread mode and waits for /dev/kni. */
export async function loadKniMode(mode: 'single' | 'multiple' = 'single'): Promise<void> {
  if (existsSync('/sys/module/kni')) await execa('rmmod', ['kni']);
  await execa('insmod', [kniModulePath(release()), `kthread_mode=${mode}`]);
  await waitFor(() => existsSync('/dev/kni'), 5000);
}

/** IP, TCP and UDP checksum errors in /proc/net/snmp text (lines joined by newlines, or by | as a guest prints them). */
export function snmpCsumErrors(snmp: string): number {
  const lines = snmp.split(/\n|\|/).filter(Boolean);
  let total = 0;
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const keys = lines[i]!.trim().split(/\s+/);
    const values = lines[i + 1]!.trim().split(/\s+/);
    const at = keys.indexOf('InCsumErrors');
    if (at > 0) total += Number(values[at]);
  }
  return total;
}

/** The checksum errors a namespace's stack counted. */
export async function csumErrors(ns: string): Promise<number> {
  return snmpCsumErrors((await nsExec(ns, 'cat /proc/net/snmp')).stdout);
}
