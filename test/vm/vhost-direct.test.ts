// The vhost-direct benchmark for real, inside the appliance VM: vhost-drive
// drives /dev/vhost-net over a KNI socket (through the data plane), a TAP
// through the relay, and a TAP in the peer namespace. These tests check that
// the harness measures what it says (frames arrive where it counts them, TSO
// super-frames travel whole where the backend allows it, pings come back,
// nothing is left behind), not how fast: the figures are the benchmark's.
import test from 'ava';
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { execa } from 'execa';
import { runVhostDirect } from '../../bench/vhost-direct.js';
import type { Run } from '../../bench/vhost-direct-result.js';
import { kniModulePath } from '../../qemu/kernels.js';
import { waitFor } from '../lib/util.js';

test.before(async () => {
  if (!existsSync('/sys/module/kni')) await execa('insmod', [kniModulePath(release())]);
  await waitFor(() => existsSync('/dev/kni'), 5000);
  if (!existsSync('/dev/vhost-net')) await execa('modprobe', ['vhost_net']);
});

// Serial: every run uses the same peer namespace and device names.
const label = (r: Run) => `${r.path} ${r.workload} ${r.direction} hdr ${r.vnetHdr ? 'on' : 'off'}`;

async function leftovers(): Promise<string> {
  const netns = (await execa('ip', ['netns', 'list'])).stdout;
  const links = (await execa('ip', ['-o', 'link', 'show'])).stdout;
  return [netns.includes('kniv-vd-peer') ? 'netns kniv-vd-peer' : '', ...['kvdA', 'kvdk0', 'kvdt0'].filter((l) => links.includes(`${l}:`) || links.includes(`${l}@`))]
    .filter(Boolean)
    .join(', ');
}

test.serial('60-byte frames cross every path both ways, pings come back, and nothing is left', async (t) => {
  const result = await runVhostDirect({ seconds: 1, repeat: 1, workloads: ['frames', 'ping'], vnetHdr: [true, false] }, (l) => t.log(l));
  t.is(result.runs.length, 3 * 2 * 2 + 3 * 2);
  for (const r of result.runs) {
    if (r.workload === 'ping') {
      t.true((r.latency?.count ?? 0) > 0, `${label(r)}: no echo reply`);
      t.true((r.latency?.medianUs ?? 0) > 0, label(r));
      continue;
    }
    t.true(r.received.frames > 0, `${label(r)}: nothing arrived`);
    // What arrives was sent: a counter read in the wrong place or namespace would break this.
    t.true(r.received.payloadBytes <= r.sent.payloadBytes, `${label(r)}: ${r.received.payloadBytes} B arrived of ${r.sent.payloadBytes} B sent`);
    t.true(r.cpu.busy > 0 && r.bytesPerCpuSecond > 0, label(r));
    if (r.direction === 'to-port') t.true((r.cpu.threads.vhost ?? 0) >= 0, label(r));
  }
  // The KNI path's own threads are the ones charged: the data plane forwards, the kernel thread delivers.
  const kniFromPort = result.runs.find((r) => r.path === 'kni' && r.workload === 'frames' && r.direction === 'from-port')!;
  t.true(kniFromPort.cpu.threads.forwarder > 0, 'the data plane thread used no CPU on the KNI path');
  const tap = result.runs.find((r) => r.path === 'tap' && r.workload === 'frames')!;
  t.is(tap.cpu.threads.forwarder, 0, 'the tap path has no relay');
  t.is(await leftovers(), '');
});

test.serial('TSO super-frames: TAP and KNI with VNET_HDR carry them whole both ways; every path moves the stream', async (t) => {
  const result = await runVhostDirect({ seconds: 1, repeat: 1, workloads: ['stream'] }, (l) => t.log(l));
  t.is(result.runs.length, 3 * 2 * 2);
  for (const r of result.runs) {
    t.true(r.received.payloadBytes > 0, `${label(r)}: nothing arrived`);
    t.true(r.received.payloadBytes <= r.sent.payloadBytes * 1.001, label(r));
  }
  const get = (path: Run['path'], direction: Run['direction'], vnetHdr: boolean) =>
    result.runs.find((r) => r.path === path && r.direction === direction && r.vnetHdr === vnetHdr)!;
  // The peer's tap, or the veth behind the KNI path's port, counts one
  // packet per super-frame it took whole (not ~45 segments): ABI 5 carries
  // the GSO metadata through the FIFOs and the port gets the frame whole.
  for (const path of ['tap', 'kni'] as const) {
    const out = get(path, 'to-port', true);
    t.true(out.received.frames > 0 && out.received.frames <= out.sent.frames, `${path} to-port: ${out.received.frames} packets for ${out.sent.frames} super-frames`);
  }
  t.true((get('kni', 'to-port', true).counters['kni.tx_gso_frames'] ?? 0) > 0, 'kni to-port: no frame crossed tx_q as GSO');
  // With --offload the backend hands the driver GSO frames; without the header it cannot.
  for (const path of ['tap', 'kni'] as const) t.true(get(path, 'from-port', true).receivedGsoFrames > 0, `${path} from-port: no GSO frame reached the driver`);
  t.is(get('tap', 'from-port', false).receivedGsoFrames, 0);
  t.is(get('kni', 'from-port', false).receivedGsoFrames, 0);
  // Without the header the kernel cuts what the port gave whole, once.
  t.true((get('kni', 'from-port', false).counters['kni.rx_gso_cut'] ?? 0) > 0, 'kni from-port hdr off: no super-frame was cut in the kernel');
  t.is(await leftovers(), '');
});
