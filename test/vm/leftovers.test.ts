// The last file of the VM suite (test/runner.ts runs it after every other):
// whatever the files before it did, side by side or one at a time, kni.ko
// holds nothing any more, nothing they started still runs, and it unloads.
// The guest phase's files check only what they own; the whole module is
// counted here.
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { execa } from 'execa';
import { moduleInfo } from '../../native/index.js';
import { waitFor } from '../lib/util.js';

test.before(() => {
  if (!release().match(/^6\.(1|12)\./)) throw new Error(`these tests run inside the appliance VM, not on ${release()}`);
});

/** Command lines of the live processes named `comm`. */
function processes(comm: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) continue;
      out.push(`${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`);
    } catch {
      // gone while we looked
    }
  }
  return out;
}

test.serial('after the VM suite no qemu, iperf3, network namespace or kniv service is left', async (t) => {
  t.deepEqual(processes('qemu-system-x86'), [], 'no qemu');
  t.deepEqual(processes('iperf3'), [], 'no iperf3');
  t.deepEqual(
    processes('node').filter((p) => / serve /.test(p)),
    [],
    'no kniv serve',
  );
  t.is((await execa('ip', ['netns', 'list'])).stdout.trim(), '', 'no network namespace');
});

test.serial('after the VM suite kni.ko holds no interface, socket, thread or shared memory, and unloads', async (t) => {
  t.true(existsSync('/dev/kni'), 'kni.ko is loaded');
  // A socket qemu held goes when the last reference does: vhost-net drops its
  // own a moment after qemu's descriptors close.
  const empty = () => {
    const info = moduleInfo();
    return info.interfaces === 0 && info.sockets === 0 && info.threads === 0 && info.sharedMemoryBytes === 0;
  };
  await waitFor(empty, 10_000);
  t.like(moduleInfo(), { interfaces: 0, sockets: 0, threads: 0, sharedMemoryBytes: 0 });
  const rmmod = await execa('rmmod', ['kni'], { reject: false, all: true });
  t.is(rmmod.exitCode, 0, rmmod.all);
  t.true(await waitFor(() => !existsSync('/sys/module/kni') && !existsSync('/dev/kni'), 5000), 'kni.ko and /dev/kni are gone');
});
