// `kniv bench vhost`: the result document's arithmetic and table, iperf3's
// JSON read right, the options, the service's mapping of requests and
// results. The real run, a nested guest with its NICs on KNI sockets and TAP
// devices and iperf3 through each, is in test/vm/service.test.ts (through the
// service, inside the appliance VM where no other VM competes for the CPUs);
// the command's own trip into the appliance VM is the exception-path
// benchmark's, run for real in bench.test.ts.
import test from 'ava';
import { parseIperf } from '../../bench/vhost.js';
import { configArgs, configFrom, resultProblems } from '../../bench/vhost-cli.js';
import {
  formatTable,
  parsePaths,
  pathInfo,
  PATHS,
  summarise,
  VhostBenchConfigSchema,
  VhostBenchResultSchema,
  type Run,
  type VhostBenchResult,
} from '../../bench/vhost-result.js';
import { median } from '../../bench/stats.js';
import { benchConfig, benchPaths, benchResult } from '../../server/drivers/bench-runner.js';
import { BenchCreateSchema, BenchResultSchema } from '../../server/schemas.js';
import { runKniv } from '../lib/util.js';

const run = (path: Run['path'], protocol: Run['protocol'], direction: Run['direction'], mbps: number, repeat: number): Run => ({
  path,
  ...pathInfo(path),
  vhost: true,
  protocol,
  direction,
  repeat,
  seconds: 2,
  mbps,
  retransmits: protocol === 'tcp' ? repeat : null,
  datagrams: protocol === 'udp' ? { sent: 1000, received: 900 } : null,
  pps: protocol === 'udp' ? mbps * 100 : null,
  lossPercent: protocol === 'udp' ? 10 : null,
  vhostWakeups: 50,
  attempts: 1,
});

function document(runs: Run[]): VhostBenchResult {
  return VhostBenchResultSchema.parse({
    benchmark: 'vhost',
    version: 1,
    startedAt: new Date().toISOString(),
    seconds: 300,
    system: { kernel: '6.1.0-test', cpus: 2, cpuModel: 'x', node: 'v20', qemu: '7.2.0', iperf3: '3.12', kthreadMode: 'single', where: 'appliance-vm', accel: 'tcg' },
    guest: { kernel: '6.1.0-test', accel: 'tcg', vcpus: 1, memoryMiB: 256, bootSeconds: 120 },
    vhost: [
      { path: 'kni-vnethdr-on', requested: true, started: true },
      { path: 'tap-vnethdr-on', requested: true, started: true },
    ],
    vhostFallback: null,
    vhostVerified: true,
    interface: null,
    config: { paths: ['kni-vnethdr-on', 'tap-vnethdr-on'], seconds: 2 },
    runs,
    summary: summarise(runs),
  });
}

test('paths: full names, a backend for both of its VNET_HDR settings, all; canonical order; unknown words named', (t) => {
  t.deepEqual(parsePaths(['tap', 'kni-vnethdr-on']), ['kni-vnethdr-on', 'tap-vnethdr-on', 'tap-vnethdr-off']);
  t.deepEqual(parsePaths(['all']), [...PATHS]);
  t.deepEqual(parsePaths(['kni', 'kni-vnethdr-off']), ['kni-vnethdr-off', 'kni-vnethdr-on']);
  t.throws(() => parsePaths(['kni,tcp']), { message: /unknown path "tcp"/ });
  t.deepEqual(pathInfo('tap-vnethdr-off'), { backend: 'tap', vnetHdr: false });
  t.deepEqual(pathInfo('kni-vnethdr-on'), { backend: 'kni', vnetHdr: true });
});

test('summaries are medians over repeats per path, protocol and direction; the table puts the paths side by side', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 2, 3]), 2.5);
  const runs = [
    ...[10, 30, 20].map((m, i) => run('kni-vnethdr-on', 'tcp', 'host-to-guest', m, i + 1)),
    ...[5, 5, 6].map((m, i) => run('tap-vnethdr-on', 'tcp', 'host-to-guest', m, i + 1)),
    ...[1, 2, 3].map((m, i) => run('kni-vnethdr-on', 'udp', 'guest-to-host', m, i + 1)),
  ];
  const summary = summarise(runs);
  t.is(summary.length, 3);
  t.like(summary[0], { path: 'kni-vnethdr-on', protocol: 'tcp', runs: 3, mbps: 20, retransmits: 2, pps: null, lossPercent: null });
  t.like(summary[2], { path: 'kni-vnethdr-on', protocol: 'udp', direction: 'guest-to-host', mbps: 2, pps: 200, lossPercent: 10, retransmits: null });
  const table = formatTable(document(runs));
  t.regex(table, /TCG: the guest CPU is emulated/);
  t.regex(table, /protocol\s+direction\s+kni-vnethdr-on\s+tap-vnethdr-on/);
  t.regex(table, /TCP\s+host-to-guest\s+20\.0 Mbit\/s \(2\)\s+5\.0 Mbit\/s \(2\)/);
  t.regex(table, /UDP 64 B\s+guest-to-host\s+200 pps \(10%\)\s+-/);
  t.deepEqual(resultProblems(document(runs)), []);
  const empty = document([run('tap-vnethdr-on', 'udp', 'host-to-guest', 0, 1)]);
  t.deepEqual(resultProblems(empty), ['tap-vnethdr-on udp host-to-guest (repeat 1) moved nothing']);
});

test("iperf3's JSON: TCP is the receiver's rate with the sender's retransmits; UDP counts the datagrams that arrived from their bytes", (t) => {
  const tcp = parseIperf('tcp', {
    end: {
      sum_sent: { seconds: 2, bytes: 2_600_000, bits_per_second: 10.4e6, retransmits: 7 },
      sum_received: { seconds: 2.01, bytes: 2_500_000, bits_per_second: 9.95e6 },
    },
  }, 64);
  t.deepEqual(tcp, { seconds: 2.01, mbps: 9.95, retransmits: 7, datagrams: null, pps: null, lossPercent: null });
  const udp = parseIperf('udp', {
    end: {
      sum_sent: { seconds: 2, bytes: 64_000, bits_per_second: 256_000, packets: 1000 },
      sum_received: { seconds: 2, bytes: 48_000, bits_per_second: 192_000, packets: 1000, lost_packets: 250, lost_percent: 25 },
    },
  }, 64);
  t.deepEqual(udp, { seconds: 2, mbps: 0.192, retransmits: null, datagrams: { sent: 1000, received: 750 }, pps: 375, lossPercent: 25 });
  // Sequence-number figures iperf3 garbles (a negative loss wrapped around) do not matter: bytes do.
  const garbled = parseIperf('udp', {
    end: {
      sum_sent: { seconds: 2, bytes: 64_000, bits_per_second: 256_000, packets: 1000 },
      sum_received: { seconds: 2, bytes: 64_000, bits_per_second: 256_000, packets: 2 ** 63, lost_packets: -(2 ** 62), lost_percent: -50 },
    },
  }, 64);
  t.like(garbled, { datagrams: { sent: 1000, received: 1000 }, pps: 500, lossPercent: 0 });
  t.throws(() => parseIperf('tcp', { error: 'the server is busy running a test' }, 64), { message: /no summary: the server is busy/ });
});

test('options become the config and go through to the run inside the VM unchanged', (t) => {
  const c = configFrom({ seconds: '2', omit: '0', repeat: '1', paths: ['kni', 'tap-vnethdr-off'], protocol: ['udp'], direction: ['guest-to-host'], 'udp-bytes': '128', 'udp-rate': '2000', 'no-vhost': true, 'guest-cpus': '2', 'guest-memory': '512' });
  t.deepEqual(VhostBenchConfigSchema.parse(c), {
    paths: ['kni-vnethdr-off', 'kni-vnethdr-on', 'tap-vnethdr-off'],
    protocols: ['udp'],
    directions: ['guest-to-host'],
    seconds: 2,
    omitSeconds: 0,
    repeat: 1,
    udpBytes: 128,
    udpRate: 2000,
    vhost: false,
    guestCpus: 2,
    guestMemoryMiB: 512,
  });
  const values: Record<string, unknown> = {};
  const args = configArgs(c);
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.slice(2);
    if (name === 'no-vhost') values[name] = true;
    else if (name === 'protocol' || name === 'direction' || name === 'paths') values[name] = [...((values[name] as string[]) ?? []), args[++i]!];
    else values[name] = args[++i];
  }
  t.deepEqual(configFrom(values), c);
  t.deepEqual(VhostBenchConfigSchema.parse({}).paths, [...PATHS], 'all four paths by default');
});

test('usage errors exit 2 and say what is wrong', async (t) => {
  const cases: [string[], RegExp][] = [
    [['bench'], /a benchmark is required: exception-path, pool, vhost or vhost-direct/],
    [['bench', 'nope'], /unknown benchmark "nope"/],
    [['bench', 'vhost', '--paths', 'kni,foo'], /--paths: unknown path "foo"/],
    [['bench', 'vhost', '--protocol', 'sctp'], /--protocol: "sctp" is not one of the accepted values/],
    [['bench', 'vhost', '--seconds', '0'], /--seconds must be a whole number from 1 to 300/],
    [['bench', 'vhost', '--here', '--kernel', '6.1'], /do not apply with --here/],
    [['bench', 'vhost', '--kernel', '5.10'], /--kernel must be 6.1 or 6.12/],
  ];
  for (const [argv, message] of cases) {
    const r = await runKniv(argv);
    t.is(r.exitCode, 2, argv.join(' '));
    t.regex(r.stderr, message, argv.join(' '));
  }
});

test("the service: a request becomes the benchmark's config, its document the API's result", (t) => {
  const spec = BenchCreateSchema.parse({ direction: 'guest-to-host', durationS: 3, protocols: ['udp'], udpPayloadBytes: 100 });
  t.deepEqual(benchPaths(spec), [...PATHS]);
  t.deepEqual(benchPaths(spec, { vnetHdr: true }), ['kni-vnethdr-on']);
  t.deepEqual(benchPaths(BenchCreateSchema.parse({ paths: ['tap-vnethdr-off', 'kni-vnethdr-on'] })), ['kni-vnethdr-on', 'tap-vnethdr-off']);
  t.deepEqual(benchConfig(spec), {
    paths: [...PATHS],
    protocols: ['udp'],
    directions: ['guest-to-host'],
    seconds: 3,
    omitSeconds: 1,
    repeat: 1,
    udpBytes: 100,
    vhost: true,
  });
  t.deepEqual(benchConfig(BenchCreateSchema.parse({})).directions, ['host-to-guest', 'guest-to-host']);
  const doc = document([run('kni-vnethdr-on', 'tcp', 'host-to-guest', 12, 1), run('tap-vnethdr-on', 'udp', 'guest-to-host', 3, 1)]);
  const result = BenchResultSchema.parse(benchResult(doc));
  t.deepEqual(result.results, [
    { direction: 'host-to-guest', mbps: 12, retransmits: 1, path: 'kni-vnethdr-on', backend: 'kni', vnetHdr: true, vhost: true, protocol: 'tcp', packetsPerSecond: null, lossPercent: null, runs: 1 },
    { direction: 'guest-to-host', mbps: 3, retransmits: null, path: 'tap-vnethdr-on', backend: 'tap', vnetHdr: true, vhost: true, protocol: 'udp', packetsPerSecond: 300, lossPercent: 10, runs: 1 },
  ]);
  t.like(result, { accel: 'tcg', kernel: '6.1.0-test', guest: { kernel: '6.1.0-test', vcpus: 1, memoryMiB: 256, bootSeconds: 120 }, durationS: 2, vhostVerified: true, interface: null });
});
