// The KNI netdev's second generation, inside the appliance VM: offloads the
// stack leaves to the data plane's port (KNI_CREATE_F_OFFLOADS), GRO on the
// frames the data plane gives the stack, and a transmit queue that stops
// instead of dropping when tx_q or alloc_q has no room.
//
// Also: an interface moved into a namespace works there and goes away with it.
//
//   netns A                       init ns (this process)                 netns B
//   kvnd0 (KNI) 10.98.0.1 ═ FIFOs ═ data plane ═ AF_PACKET on kvn0 ─ veth ─ kvn1 10.98.0.2
//
import test, { type ExecutionContext } from 'ava';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { DataPlane, Kni, KniError, moduleInfo, type KniInterface } from '../../native/index.js';
import { csumErrors, iperf3, loadKniMode, nsExec } from '../lib/netns.js';
import { waitFor } from '../lib/util.js';

const sh = (cmd: string) => execa('sh', ['-c', cmd], { all: true });
/** ethtool -S of a device in a namespace, as numbers. */
async function ethtoolStats(ns: string, dev: string): Promise<Record<string, number>> {
  const r = await nsExec(ns, `ethtool -S ${dev}`);
  const out: Record<string, number> = {};
  for (const m of r.stdout.matchAll(/^\s+(\w+): (\d+)$/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** ethtool -k: whether a feature is on ("tcp-segmentation-offload" and so on). */
async function feature(ns: string, dev: string, name: string): Promise<boolean> {
  const r = await nsExec(ns, `ethtool -k ${dev}`);
  const m = new RegExp(`^${name}: (on|off)`, 'm').exec(r.stdout);
  if (!m) throw new Error(`ethtool -k ${dev} has no ${name}: ${r.all}`);
  return m[1] === 'on';
}

async function topology(t: ExecutionContext, kni: Kni, offloads: boolean) {
  await sh('ip netns add A && ip netns add B && ip link add kvn0 type veth peer name kvn1 && ip link set kvn1 netns B && ip link set kvn0 up');
  t.teardown(() => sh('ip netns del A; ip netns del B; ip link del kvn0').catch(() => undefined));
  await sh('ip -n B addr add 10.98.0.2/24 dev kvn1 && ip -n B link set kvn1 up');
  const iface = kni.create({ name: 'kvnd0', offloads, bufCount: 4096, fifoEntries: 2048 });
  const dp = new DataPlane([{ iface, port: { kind: 'packet', ifname: 'kvn0' } }]);
  t.teardown(() => dp.stop());
  await sh('ip link set kvnd0 netns A && ip -n A addr add 10.98.0.1/24 dev kvnd0 && ip -n A link set kvnd0 up');
  const carrier = await nsExec('A', 'echo 1 > /sys/class/net/kvnd0/carrier');
  t.is(carrier.exitCode, 0, carrier.all);
  const ping = await nsExec('A', 'ping -c 2 -i 0.2 -W 5 10.98.0.2');
  t.is(ping.exitCode, 0, ping.all);
  return { iface, dp };
}

/** iperf3 for 2 s from A to B (or B to A with reverse); the bytes B (or A) received. */
async function iperf(t: ExecutionContext, reverse: boolean): Promise<number> {
  const got = await iperf3(t, 'B', '10.98.0.2', 'A', reverse);
  t.log(`iperf3 ${reverse ? 'B→A' : 'A→B'} ${(got.bitsPerSecond / 1e6).toFixed(1)} Mbit/s (TCG)`);
  return got.bytes;
}

test.serial('with offloads the stack hands the netdev TCP super-frames, the port carries them whole, the peer gets the stream intact; ethtool -K turns TSO off', async (t) => {
  await loadKniMode();
  const kni = new Kni();
  t.teardown(() => kni.close());
  const { iface } = await topology(t, kni, true);
  t.true(await feature('A', 'kvnd0', 'tcp-segmentation-offload'));
  t.true(await feature('A', 'kvnd0', 'tx-checksumming'));
  t.true(await feature('A', 'kvnd0', 'scatter-gather'));

  const before = await ethtoolStats('A', 'kvnd0');
  const dpBefore = iface.stats();
  t.true((await iperf(t, false)) > 0);
  const after = await ethtoolStats('A', 'kvnd0');
  const dp = iface.stats();
  const gso = (after.tx_gso_frames ?? 0) - (before.tx_gso_frames ?? 0);
  t.true(gso > 0, `tx_gso_frames +${gso}`);
  t.true((after.tx_csum_partial ?? 0) > (before.tx_csum_partial ?? 0), 'partial checksums left to the port');
  t.true(dp.toPortGso - dpBefore.toPortGso > 0, 'the data plane sent super-frames to the port whole');
  t.is(dp.toPortCut, dpBefore.toPortCut, 'and cut none itself');
  // A super-frame carries many segments: fewer frames than 1448-byte segments of the bytes sent.
  const frames = (after.tx_packets ?? 0) - (before.tx_packets ?? 0);
  const bytes = (after.tx_bytes ?? 0) - (before.tx_bytes ?? 0);
  t.true(bytes / frames > 3000, `${frames} frames of ${(bytes / frames).toFixed(0)} B on average`);
  t.is(after.tx_drop_bad_offload ?? -1, 0);
  t.is(await csumErrors('B'), 0, 'B verified every checksum');

  // An operator's ethtool -K: the stack segments and checksums again.
  const off = await nsExec('A', 'ethtool -K kvnd0 tso off tx off');
  t.is(off.exitCode, 0, off.all);
  t.false(await feature('A', 'kvnd0', 'tcp-segmentation-offload'));
  const before2 = await ethtoolStats('A', 'kvnd0');
  t.true((await iperf(t, false)) > 0);
  const after2 = await ethtoolStats('A', 'kvnd0');
  t.is(after2.tx_gso_frames, before2.tx_gso_frames, 'no super-frame with TSO off');
  t.is(after2.tx_csum_partial, before2.tx_csum_partial, 'no partial checksum with tx off');
  t.is(await csumErrors('B'), 0);
});

test.serial('at a tiny MTU TSO stays within the ABI\'s segment bound: super-frames of many small segments go, none is dropped', async (t) => {
  await loadKniMode();
  const kni = new Kni();
  t.teardown(() => kni.close());
  await topology(t, kni, true);
  // MSS about 150: a 64 KiB super-frame would be over 400 segments, and the
  // ABI's bound (256, headers counted) is what tso_max_segs keeps clear of.
  const mtu = await nsExec('A', 'ip link set kvnd0 mtu 200');
  t.is(mtu.exitCode, 0, mtu.all);
  t.is((await nsExec('B', 'ip link set kvn1 mtu 200')).exitCode, 0);
  const before = await ethtoolStats('A', 'kvnd0');
  t.true((await iperf(t, false)) > 0);
  const after = await ethtoolStats('A', 'kvnd0');
  t.true((after.tx_gso_frames ?? 0) > (before.tx_gso_frames ?? 0), 'super-frames at MTU 200');
  t.is(after.tx_drop_bad_offload, before.tx_drop_bad_offload, 'none beyond the segment bound');
  t.is(await csumErrors('B'), 0);
});

test.serial('without KNI_CREATE_F_OFFLOADS the netdev offers no offload and every frame on tx_q is complete', async (t) => {
  await loadKniMode();
  const kni = new Kni();
  t.teardown(() => kni.close());
  await topology(t, kni, false);
  t.false(await feature('A', 'kvnd0', 'tcp-segmentation-offload'));
  t.false(await feature('A', 'kvnd0', 'tx-checksumming'));
  const before = await ethtoolStats('A', 'kvnd0');
  t.true((await iperf(t, false)) > 0);
  const after = await ethtoolStats('A', 'kvnd0');
  t.is(after.tx_gso_frames, before.tx_gso_frames);
  t.is(after.tx_csum_partial, before.tx_csum_partial);
  t.true((after.tx_packets ?? 0) > (before.tx_packets ?? 0));
  t.is(await csumErrors('B'), 0);
});

/** tracefs, mounted if it is not. */
async function tracing(): Promise<string> {
  for (const dir of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) if (existsSync(`${dir}/trace`)) return dir;
  await sh('mount -t tracefs nodev /sys/kernel/tracing');
  return '/sys/kernel/tracing';
}

test.serial('MTU-sized segments from the port reach the stack through GRO, merged', async (t) => {
  await loadKniMode();
  const kni = new Kni();
  t.teardown(() => kni.close());
  const { iface } = await topology(t, kni, true);
  // B sends plain 1500-byte frames: no super-frame reaches the port, so
  // anything larger at the stack was merged by the netdev's GRO.
  const plain = await nsExec('B', 'ethtool -K kvn1 tso off gso off');
  t.is(plain.exitCode, 0, plain.all);
  const tr = await tracing();
  const ev = `${tr}/events/net/netif_receive_skb`;
  writeFileSync(`${tr}/trace`, '');
  writeFileSync(`${ev}/filter`, 'name == "kvnd0"');
  writeFileSync(`${ev}/enable`, '1');
  t.teardown(() => {
    writeFileSync(`${ev}/enable`, '0');
    writeFileSync(`${ev}/filter`, '0');
  });
  const dpBefore = iface.stats();
  t.true((await iperf(t, true)) > 0);
  writeFileSync(`${ev}/enable`, '0');
  const dp = iface.stats();
  t.is(dp.toKernelGso, dpBefore.toKernelGso, 'the port gave the data plane no super-frame');
  const lens = [...readFileSync(`${tr}/trace`, 'utf8').matchAll(/netif_receive_skb: dev=kvnd0 skbaddr=\S+ len=(\d+)/g)].map((m) => Number(m[1]));
  const merged = lens.filter((l) => l > 1500);
  t.true(lens.length > 0, 'the stream was traced');
  t.true(merged.length > 0, `${merged.length} of ${lens.length} skbs up the stack were merged (largest ${Math.max(...lens)} B)`);
  t.is(await csumErrors('A'), 0, 'A verified every checksum');
});

/** The netdev's qdisc: its backlog in packets and what it dropped. */
async function qdisc(dev: string): Promise<{ backlog: number; dropped: number }> {
  const out = (await sh(`tc -s qdisc show dev ${dev}`)).stdout;
  const backlog = /backlog \S+ (\d+)p/.exec(out);
  const dropped = /dropped (\d+)/.exec(out);
  return { backlog: Number(backlog?.[1] ?? NaN), dropped: Number(dropped?.[1] ?? NaN) };
}

test.serial('a full tx_q stops the transmit queue instead of dropping: the frames wait in the qdisc and all go once the data plane drains', async (t) => {
  t.timeout(60_000);
  await loadKniMode();
  const kni = new Kni();
  t.teardown(() => kni.close());
  // A small pool: alloc_q holds few buffers, and nothing drains tx_q yet.
  const iface: KniInterface = kni.create({ name: 'kvbp0', bufCount: 64, fifoEntries: 32 });
  // Bringing it up is a request a data plane answers; that one stops after.
  const answering = new DataPlane([{ iface, port: { kind: 'sink' } }]);
  await sh('ip addr add 10.97.0.1/24 dev kvbp0 && ip link set kvbp0 up && ip neigh replace 10.97.0.2 lladdr 02:00:00:00:97:02 dev kvbp0 nud permanent');
  await sh('sysctl -qw net.ipv6.conf.kvbp0.disable_ipv6=1');
  // A plain FIFO qdisc, so that waiting frames are not dropped for their age (fq_codel would).
  await sh('tc qdisc replace dev kvbp0 root pfifo limit 1000');
  writeFileSync('/sys/class/net/kvbp0/carrier', '1');
  answering.stop();
  const before = await ethtoolStats('', 'kvbp0');
  const N = 60;

  // 60 datagrams, more than alloc_q can take: the rest must wait. (Not many
  // more: frames in the qdisc count against the socket's send buffer, which
  // then blocks the sender, which is back-pressure too.)
  const udp = createSocket('udp4');
  t.teardown(() => udp.close());
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve, reject) => udp.send(Buffer.alloc(1000, 0x78), 9, '10.97.0.2', (err) => (err ? reject(err) : resolve())));
  }
  await sleep(500);
  const held = await ethtoolStats('', 'kvbp0');
  const q = await qdisc('kvbp0');
  t.true((held.tx_queue_stops ?? 0) > (before.tx_queue_stops ?? 0), 'the queue stopped');
  t.is(held.tx_drop_no_buf, before.tx_drop_no_buf, 'no frame dropped for want of a buffer');
  t.is(held.tx_drop_tx_q_full, before.tx_drop_tx_q_full, 'none for a full tx_q');
  t.true(q.backlog > 0, `${q.backlog} frames wait in the qdisc`);
  const queued = (held.tx_packets ?? 0) - (before.tx_packets ?? 0);
  t.true(queued < N, `${queued} frames reached tx_q before it stopped`);

  // The data plane drains tx_q and refills alloc_q; its doorbell wakes the queue.
  const dp = new DataPlane([{ iface, port: { kind: 'sink' } }]);
  t.teardown(() => dp.stop());
  const drained = await waitFor(() => iface.stats().toPortPackets >= N, 10_000);
  t.true(drained, `the sink got ${iface.stats().toPortPackets} of ${N}`);
  const after = await ethtoolStats('', 'kvbp0');
  t.log(`${queued} of ${N} frames fit before the queue stopped; ${(after.tx_queue_stops ?? 0) - (before.tx_queue_stops ?? 0)} stops in all`);
  t.is((after.tx_packets ?? 0) - (before.tx_packets ?? 0), N, 'every frame went through tx_q');
  t.is(after.tx_drop_no_buf, before.tx_drop_no_buf);
  t.is(after.tx_drop_tx_q_full, before.tx_drop_tx_q_full);
  t.is((await qdisc('kvbp0')).dropped, 0, 'and the qdisc dropped none');
});

test.serial('an interface moved into a network namespace works there and goes away with it, not back to the host', async (t) => {
  await loadKniMode();
  const base = moduleInfo().interfaces;
  const kni = new Kni();
  t.teardown(() => kni.close());
  await sh('ip netns add kvmv');
  t.teardown(() => sh('ip netns del kvmv').catch(() => undefined));
  const iface = kni.create({ name: 'kvmv0' });
  const dp = new DataPlane([{ iface, port: { kind: 'sink' } }]);
  t.teardown(() => dp.stop());
  await sh('ip link set kvmv0 netns kvmv');
  t.notRegex((await sh('ip -o link show')).stdout, /kvmv0/, 'moved out of this namespace');
  const up = await nsExec(
    'kvmv',
    'ip addr add 10.96.0.1/24 dev kvmv0 && ip link set kvmv0 up && echo 1 > /sys/class/net/kvmv0/carrier && ' +
      'ip neigh replace 10.96.0.2 lladdr 02:00:00:00:96:02 dev kvmv0 nud permanent',
  );
  t.is(up.exitCode, 0, up.all);
  // Its frames reach the data plane from there (the sink answers none of the pings).
  const before = iface.stats().toPortPackets;
  await nsExec('kvmv', 'ping -c 3 -i 0.2 -W 1 10.96.0.2');
  t.true(await waitFor(() => iface.stats().toPortPackets >= before + 3, 5000), `${iface.stats().toPortPackets - before} frames`);

  await sh('ip netns del kvmv');
  t.true(await waitFor(() => moduleInfo().interfaces === base, 10_000), 'removed with its namespace');
  t.notRegex((await sh('ip -o link show')).stdout, /kvmv0|dev\d+/, 'and not pushed back here');
  dp.stop();
  const gone = t.throws(() => iface.release());
  t.is((gone as KniError).code, 'ENOENT', 'its creator is told it is gone');
});
