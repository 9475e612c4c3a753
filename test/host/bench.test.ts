// `kniv bench exception-path`: the result document's arithmetic and table,
// the frames it injects, usage errors, and one short real run in the
// appliance VM. No assertion is made on the speeds themselves.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { udpFrame } from '../../bench/exception-path.js';
import {
  DIRECTIONS,
  ExceptionPathResultSchema,
  formatPool,
  formatTable,
  pairedRatio,
  PATHS,
  WORKLOADS,
  poolPairs,
  summarise,
  type Run,
} from '../../bench/result.js';
import { median } from '../../bench/stats.js';
import { runKniv } from '../lib/util.js';

/** Ones' complement sum of 16-bit big-endian words, written out longhand. */
function checksum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += ((bytes[i] ?? 0) << 8) + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

test('udpFrame builds Ethernet/IPv4/UDP frames whose checksums verify', (t) => {
  for (const size of [60, 64, 65, 1500, 1514]) {
    const f = udpFrame({ srcMac: '02:00:00:00:00:02', dstMac: '02:00:00:00:00:01', srcIp: '10.201.0.2', dstIp: '10.201.0.1', srcPort: 9, dstPort: 47001, frameBytes: size });
    t.is(f.length, size);
    t.deepEqual([...f.subarray(0, 6)], [2, 0, 0, 0, 0, 1]);
    t.is(f.readUInt16BE(12), 0x0800);
    t.is(f.readUInt16BE(16), size - 14, 'IP total length');
    t.is(f.readUInt16BE(38), size - 34, 'UDP length');
    t.is(checksum([...f.subarray(14, 34)]), 0xffff, 'IP header checksum');
    const pseudo = [...f.subarray(26, 34), 0, 17, (size - 34) >> 8, (size - 34) & 0xff];
    t.is(checksum([...pseudo, ...f.subarray(34)]), 0xffff, `UDP checksum, ${size} B`);
  }
});

const run = (path: Run['path'], direction: Run['direction'], pps: number, repeat: number, workload: Run['workload'] = 'udp'): Run => ({
  path,
  workload,
  direction,
  frameBytes: workload === 'tcp' ? 1514 : 64,
  repeat,
  seconds: 1,
  sent: { packets: pps, pps, gbps: (pps * 512) / 1e9 },
  received: { packets: pps, pps, gbps: (pps * 512) / 1e9 },
  lossRatio: 0,
  counters: {},
  cpu: {
    user: 0,
    system: 0,
    softirq: 0,
    idle: 1,
    threads: { helper: 0, forwarder: 0, kthread: 0, ksoftirqd: 0 },
    switches: { helper: { voluntary: 0, involuntary: 0 }, forwarder: { voluntary: 0, involuntary: 0 }, kthread: { voluntary: 0, involuntary: 0 } },
  },
});

/** A result document from the appliance VM (TCG) holding these runs and their summary. */
const resultOf = (runs: Run[], config: object) =>
  ExceptionPathResultSchema.parse({
    benchmark: 'exception-path',
    version: 1,
    startedAt: new Date().toISOString(),
    seconds: 10,
    system: { kernel: '6.1.0-test', cpus: 2, cpuModel: 'x', node: 'v20', kthreadMode: 'single', pollIntervalUs: 100, where: 'appliance-vm', accel: 'tcg' },
    config,
    runs,
    summary: summarise(runs),
  });

test('summaries are medians over repeats, and the table puts KNI and TAP side by side', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 2, 3]), 2.5);
  const runs = [
    ...[100, 300, 200].map((pps, i) => run('kni', 'to-linux', pps, i + 1)),
    ...[100, 100, 100].map((pps, i) => run('tap', 'to-linux', pps, i + 1)),
  ];
  const summary = summarise(runs);
  t.is(summary.length, 2);
  t.is(summary.find((s) => s.path === 'kni')?.receivedPps, 200);
  t.is(summary.find((s) => s.path === 'kni')?.runs, 3);
  // The KNI/TAP column is the median of the ratios within each repeat: 1, 3 and 2.
  t.is(pairedRatio(runs, 'to-linux', 64, (r) => r.received.pps), 2);
  const table = formatTable(resultOf(runs, { frameBytes: [64], directions: ['to-linux'] }));
  t.regex(table, /TCG/);
  t.regex(table, /to-linux\s+64 B\s+200\s+.*100\s+.*2\.00x/);
});

test('TCP stream runs are their own case, with their own KNI/TAP ratio and CPU time per packet', (t) => {
  const cpu = (r: Run, us: number): Run => ({ ...r, cpuUsPerPacket: us });
  const runs = [
    cpu(run('kni', 'from-linux', 600, 1, 'tcp'), 1),
    cpu(run('tap', 'from-linux', 200, 1, 'tcp'), 4),
    cpu(run('kni', 'from-linux', 50, 1), 8),
    cpu(run('tap', 'from-linux', 100, 1), 8),
  ];
  const summary = summarise(runs);
  t.is(summary.length, 4);
  t.is(summary.find((s) => s.path === 'kni' && s.workload === 'tcp')?.receivedPps, 600);
  t.is(pairedRatio(runs, 'from-linux', 1514, (r) => r.received.pps, 'tcp'), 3);
  t.is(pairedRatio(runs, 'from-linux', 1514, (r) => r.received.pps), undefined, 'a udp case of that size has no runs');
  t.is(pairedRatio(runs, 'from-linux', 64, (r) => r.received.pps), 0.5);
  const table = formatTable(resultOf(runs, { frameBytes: [64], directions: ['from-linux'], repeat: 1 }));
  t.regex(table, /from-linux\s+TCP stream\s+600\s+.*3\.00x/);
  t.regex(table, /from-linux\s+64 B\s+50\s+.*0\.50x/);
  // CPU per packet: KNI 1 µs against TAP's 4 on the stream.
  t.regex(table, /µs\/pkt[\s\S]*from-linux\s+TCP stream\s+1\.00\s+4\.00\s+0\.25x/);
  // Results written before the workload field read as udp.
  const { workload: _w, ...old } = run('kni', 'to-linux', 1, 1);
  t.is(ExceptionPathResultSchema.shape.runs.element.parse(old).workload, 'udp');
});

test('bench pool groups KNI/TAP pairs by the host share both runs got', (t) => {
  const withHost = (r: Run, cores: number): Run => ({ ...r, vm: { hostSeconds: 1, hostCpuSeconds: cores, hostWaitSeconds: 0, hostMainThreadSeconds: 0 } });
  const result = (runs: Run[], profile = false) => resultOf(runs, { frameBytes: [64], directions: ['to-linux'], repeat: 2, profile });
  const rows = poolPairs([
    // Both runs of repeat 1 got all their CPUs, both of repeat 2 half, repeat 3 one of each.
    result([
      withHost(run('kni', 'to-linux', 300, 1), 1.9),
      withHost(run('tap', 'to-linux', 200, 1), 1.7),
      withHost(run('kni', 'to-linux', 100, 2), 1.0),
      withHost(run('tap', 'to-linux', 100, 2), 1.1),
      withHost(run('kni', 'to-linux', 500, 3), 1.9),
      withHost(run('tap', 'to-linux', 100, 3), 0.5),
    ]),
    result([withHost(run('kni', 'to-linux', 200, 1), 1.8), withHost(run('tap', 'to-linux', 200, 1), 1.8)]),
    // Profiled runs are slowed down by perf: they do not count.
    result([withHost(run('kni', 'to-linux', 900, 1), 1.8), withHost(run('tap', 'to-linux', 100, 1), 1.8)], true),
  ]);
  t.deepEqual(
    rows.map((r) => [r.share, r.pairs, r.ratio, r.min, r.max]),
    [
      ['full', 2, 1.25, 1, 1.5],
      ['half', 1, 1, 1, 1],
      ['mixed', 1, 5, 5, 5],
    ],
  );
  t.regex(formatPool(rows), /6\.1\.0-test\s+2\s+to-linux\s+64 B\s+>= 80%\s+2\s+/);
});

test('bad options are usage errors that name the option', async (t) => {
  for (const [args, message] of [
    [['--seconds', '0'], /--seconds must be a whole number/],
    [['--size', '20'], /--size: "20"/],
    [['--path', 'tun'], /--path: "tun"/],
    [['--kernel', '5.10'], /--kernel must be 6.1 or 6.12/],
    [['--here', '--kernel', '6.12'], /do not apply with --here/],
    [['--vm-cpus', '0'], /--vm-cpus must be a whole number/],
    [['--mark-windows'], /--mark-windows goes with --here/],
  ] as const) {
    const r = await runKniv(['bench', 'exception-path', ...args]);
    t.is(r.exitCode, 2, r.all);
    t.regex(r.stderr, message);
  }
  const unknown = await runKniv(['bench', 'nope']);
  t.is(unknown.exitCode, 2);
  t.regex(unknown.stderr, /unknown benchmark "nope"/);
});

test('a short real run in the appliance VM measures every path, direction and workload and writes the JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-bench-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'result.json');
  const r = await runKniv(['bench', 'exception-path', '--seconds', '1', '--warmup', '1', '--repeat', '1', '--size', '64', '--json', file]);
  t.is(r.exitCode, 0, r.all);
  const result = ExceptionPathResultSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  t.is(result.system.where, 'appliance-vm');
  t.regex(result.system.kernel, /^6\.1\./);
  t.is(result.system.kthreadMode, 'single');
  t.deepEqual(result.config.frameBytes, [64]);
  t.deepEqual(result.config.workloads, [...WORKLOADS]);
  t.is(result.runs.length, PATHS.length * DIRECTIONS.length * WORKLOADS.length);
  t.is(result.summary.length, PATHS.length * DIRECTIONS.length * WORKLOADS.length);
  for (const workload of WORKLOADS) {
    for (const path of PATHS) {
      for (const direction of DIRECTIONS) {
        const x = result.runs.find((u) => u.path === path && u.direction === direction && u.workload === workload);
        const what = `${workload} ${path} ${direction}`;
        t.truthy(x, `${what} measured`);
        if (!x) continue;
        t.true(x.sent.packets > 0, `${what}: something sent`);
        t.true(x.received.packets > 0, `${what}: something received`);
        t.true((x.cpuUsPerPacket ?? 0) > 0, `${what}: CPU time per packet`);
        t.true(x.seconds > 0.5);
        // The kernel verified the injected frames' checksums.
        t.is(x.counters['udp.InCsumErrors'] ?? 0, 0);
        // The host sampled qemu's CPU time over the window.
        t.true((x.vm?.hostCpuSeconds ?? 0) > 0, `${what}: qemu's CPU time over the window`);
      }
    }
  }
  t.true(result.summary.every((x) => (x.receivedPerHostCpuSecond ?? 0) > 0));
  t.regex(r.stdout, /KNI\/TAP/);
  t.regex(r.stdout, /per host CPU-second/);
  t.regex(r.stdout, /from-linux\s+64 B/);
  t.regex(r.stdout, /from-linux\s+TCP stream/);
  t.true(r.stdout.includes(file));
});
