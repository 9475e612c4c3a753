// What the VM tests that build network namespaces share.
import type { ExecutionContext } from 'ava';
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

/**
 * iperf3 for `seconds` from a client in clientNs to a one-shot server on
 * serverAddr in serverNs (with reverse, the server sends). The client's exit
 * status and iperf3's own error are asserted; what arrived is returned.
 */
export async function iperf3(
  t: ExecutionContext,
  serverNs: string,
  serverAddr: string,
  clientNs: string,
  reverse: boolean,
  seconds = 2,
): Promise<{ bytes: number; bitsPerSecond: number }> {
  const server = execa('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '--forceflush', '-B', serverAddr], { reject: false, timeout: 60_000, all: true });
  await new Promise<void>((resolve) => server.stdout.on('data', (d: Buffer) => d.toString().includes('Server listening') && resolve()));
  const client = await nsExec(clientNs, `iperf3 -c ${serverAddr} -t ${seconds} -J ${reverse ? '-R' : ''}`);
  const done = await server;
  t.is(client.exitCode, 0, client.all);
  const result = JSON.parse(client.stdout) as { error?: string; end: { sum_received: { bytes: number; bits_per_second: number } } };
  t.is(result.error, undefined, `iperf3: ${result.error}; server: ${done.all}`);
  return { bytes: result.end.sum_received.bytes, bitsPerSecond: result.end.sum_received.bits_per_second };
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
