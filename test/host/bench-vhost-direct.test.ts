// `kniv bench vhost-direct`: the result document's arithmetic and table, the
// run plan and the options. The real runs (vhost-drive on /dev/vhost-net over
// a KNI socket and TAP devices) are in test/vm/vhost-direct.test.ts.
import test from 'ava';
import { configArgs, configFrom, resultProblems } from '../../bench/vhost-direct-cli.js';
import { plan } from '../../bench/vhost-direct.js';
import {
  formatTable,
  summarise,
  vnetHdrGain,
  VhostDirectConfigSchema,
  VhostDirectResultSchema,
  type Run,
  type VhostDirectResult,
} from '../../bench/vhost-direct-result.js';
import { runKniv } from '../lib/util.js';

function run(path: Run['path'], workload: Run['workload'], vnetHdr: boolean, repeat: number, payload: number, busy: number, latency?: number): Run {
  return {
    path,
    workload,
    direction: 'to-port',
    vnetHdr,
    repeat,
    seconds: 1,
    sent: { frames: 10, bytes: payload + 540, payloadBytes: payload },
    received: { frames: 10, bytes: payload + 540, payloadBytes: payload },
    receivedGsoFrames: 0,
    lossRatio: 0,
    gbps: (payload * 8) / 1e9,
    pps: 10,
    ...(latency === undefined ? {} : { latency: { count: 5, lost: 0, minUs: latency, medianUs: latency, p99Us: latency, maxUs: latency } }),
    cpu: { busy, softirq: 0, threads: { vhost: 0.1, kthread: 0, forwarder: 0, driver: 0.1, farEnd: 0, ksoftirqd: 0 } },
    bytesPerCpuSecond: payload / busy,
    cpuNsPerFrame: (busy * 1e9) / 10,
    counters: {},
  };
}

function result(runs: Run[]): VhostDirectResult {
  return {
    benchmark: 'vhost-direct',
    version: 1,
    startedAt: new Date(0).toISOString(),
    seconds: 1,
    system: { kernel: '6.12.0', cpus: 2, cpuModel: 'x', node: 'v20', kthreadMode: 'single', where: 'here', accel: null },
    config: VhostDirectConfigSchema.parse({}),
    runs,
    summary: summarise(runs),
  };
}

test('the summary takes medians per case and path, and ratios against tap-relay and tap', (t) => {
  const runs = [
    run('kni', 'stream', true, 1, 3e6, 1),
    run('kni', 'stream', true, 2, 5e6, 1),
    run('kni', 'stream', true, 3, 4e6, 1),
    run('tap-relay', 'stream', true, 1, 2e6, 1),
    run('tap', 'stream', true, 1, 8e6, 1),
    run('kni', 'stream', false, 1, 1e6, 1),
    run('kni', 'ping', true, 1, 0, 1, 300),
    run('tap-relay', 'ping', true, 1, 0, 1, 150),
  ];
  const rows = summarise(runs);
  const kni = rows.find((r) => r.path === 'kni' && r.workload === 'stream' && r.vnetHdr)!;
  t.is(kni.runs, 3);
  t.is(kni.bytesPerCpuSecond, 4e6);
  t.is(kni.vsTapRelay, 2);
  t.is(kni.vsTap, 0.5);
  t.is(rows.find((r) => r.path === 'tap-relay' && r.workload === 'stream')!.vsTapRelay, null);
  // Ping is judged by latency: twice tap-relay's round trip is 2×, worse.
  t.is(rows.find((r) => r.path === 'kni' && r.workload === 'ping')!.vsTapRelay, 2);
  t.is(vnetHdrGain(rows, 'kni', 'to-port'), 4);
  t.is(vnetHdrGain(rows, 'tap', 'to-port'), null);
  const doc = result(runs);
  t.notThrows(() => VhostDirectResultSchema.parse(doc));
  const table = formatTable(doc);
  t.regex(table, /stream to-port hdr on\s+kni\s+.*2\.00×\s+0\.50×/);
  t.regex(table, /ping to-port hdr on\s+kni\s+.*300 µs\s+2\.00×/);
  t.regex(table, /VNET_HDR on \/ off, stream bytes per CPU-second: kni to-port: 4\.00×/);
});

test('a run that moved nothing or a ping without a reply is a problem of the result', (t) => {
  const moved = run('kni', 'frames', true, 1, 100, 1);
  const idle = { ...run('tap', 'frames', true, 1, 0, 1), received: { frames: 0, bytes: 0, payloadBytes: 0 } };
  const deaf = { ...run('tap', 'ping', false, 1, 0, 1), latency: { count: 0, lost: 3, minUs: null, medianUs: null, p99Us: null, maxUs: null } };
  t.deepEqual(resultProblems(result([moved, idle, deaf])), [
    'tap frames to-port VNET_HDR on (repeat 1) moved nothing',
    'tap ping to-port VNET_HDR off (repeat 1) got no echo reply',
  ]);
});

test('the plan puts the paths of one case next to each other and pings once per VNET_HDR setting', (t) => {
  const p = plan(VhostDirectConfigSchema.parse({ repeat: 2, workloads: ['frames', 'ping'] }));
  // frames: 2 directions × 2 settings × 3 paths; ping: 2 settings × 3 paths; twice.
  t.is(p.length, 2 * (12 + 6));
  t.deepEqual(p.slice(0, 3).map((r) => r.path), ['kni', 'tap-relay', 'tap']);
  t.true(p.filter((r) => r.workload === 'ping').every((r) => r.direction === 'to-port'));
  t.deepEqual(new Set(p.map((r) => r.repeat)), new Set([1, 2]));
});

test('options parse into the config and back into the arguments for the run inside the VM', (t) => {
  const values = { seconds: '2', repeat: '1', path: ['kni,tap'], workload: ['stream'], direction: ['from-port'], 'vnet-hdr': ['on'] };
  const c = configFrom(values);
  t.deepEqual(c, { seconds: 2, repeat: 1, paths: ['kni', 'tap'], workloads: ['stream'], directions: ['from-port'], vnetHdr: [true] });
  t.deepEqual(configFrom(Object.fromEntries(configArgsPairs(configArgs(c)))), c);
});

/** ['--a', '1', '--b', 'x'] as [['a', '1'], ['b', ['x']]], the shape parse() gives configFrom. */
function configArgsPairs(args: string[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i]!.slice(2);
    out.push([k, ['seconds', 'repeat', 'idle-us'].includes(k) ? args[i + 1] : [args[i + 1]]]);
  }
  return out;
}

test('bad options are usage errors that name the option', async (t) => {
  for (const [args, message] of [
    [['--path', 'kni,veth'], /--path: "veth" is not one of the accepted values/],
    [['--vnet-hdr', 'maybe'], /--vnet-hdr: "maybe"/],
    [['--here', '--kernel', '6.12'], /do not apply with --here/],
    [['--seconds', '0'], /--seconds/],
  ] as const) {
    const r = await runKniv(['bench', 'vhost-direct', ...args]);
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(r.stderr, message);
  }
  const help = await runKniv(['bench', 'vhost-direct', '--help']);
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /kniv bench vhost-direct \[options\]/);
});
