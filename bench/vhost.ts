// The kni-vhost benchmark: guest↔host iperf3 throughput through KNI sockets
// and through TAP devices, with vhost-net, VNET_HDR on and off, in ONE guest
// boot (a nested TCG boot takes minutes). Runs where kni.ko is loaded, as
// root: inside the appliance VM (kniv bench vhost), or in the service.
//
//   peer netns          this system's root netns                               the guest (qemu)
//   ─────────────       ───────────────────────────────────────────────        ─────────────────
//   kvb…0b .1 ─ veth ─ kvb…0a ═ AF_PACKET ═ data plane ═ kvb…0k (KNI) ═ socket ═ vhost-net ═ eth0 .2   VNET_HDR off
//   kvb…1b .1 ─ veth ─ kvb…1a ═ AF_PACKET ═ data plane ═ kvb…1k (KNI) ═ socket ═ vhost-net ═ eth1 .2   VNET_HDR on
//   kvb…2t .1 (the TAP device itself, moved into the netns) ═ tun fd ═══════════ vhost-net ═ eth2 .2   IFF_VNET_HDR
//   kvb…3t .1 (the TAP device itself, moved into the netns) ═ tun fd ═══════════ vhost-net ═ eth3 .2   no IFF_VNET_HDR
//                                                                                              iperf3 -s
//
// iperf3 runs one test at a time, client in the peer netns, server in the
// guest; the paths are measured one after another, never at once.
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, execaSync } from 'execa';
import type { z } from 'zod';
import { kvmUsable } from '../qemu/accel.js';
import { formatProblem } from '../qemu/console.js';
import { waitForGuestReady } from '../qemu/guest-boot.js';
import { GUEST_ERROR, guestBoot } from '../qemu/guest-image.js';
import { loadKernels, type Kernel } from '../qemu/kernels.js';
import { launchVm, type Vm } from '../qemu/launcher.js';
import { vhostWakeups } from '../qemu/vhost-workers.js';
import type { NicBackendSchema } from '../qemu/vm-spec.js';
import {
  pathInfo,
  summarise,
  VhostBenchConfigSchema,
  VhostBenchResultSchema,
  type Direction,
  type PathId,
  type Protocol,
  type Run,
  type VhostBenchConfig,
  type VhostBenchConfigInput,
  type VhostBenchResult,
} from './vhost-result.js';

export interface BenchProgress {
  phase: string;
  /** 0..1 of the whole run. */
  fraction: number;
  message: string | null;
}

/**
 * An existing KNI interface to measure instead of a temporary one (the
 * service's BenchCreate.interface). The caller enabled its socket with the
 * VNET_HDR setting it wants and keeps the descriptor; `peerDevice` is the
 * device on the far side of its data plane (its TAP port) in this network
 * namespace, where the peer address goes for the run.
 */
export interface ExternalKni {
  name: string;
  fd: number;
  vnetHdr: boolean;
  peerDevice: string;
}

export interface VhostBenchOptions {
  /** Lines for people (stderr in the CLI, the log in the service). */
  log?: (line: string) => void;
  onProgress?: (p: BenchProgress) => void;
  /** Aborting stops the guest, removes what the run created and rejects. */
  signal?: AbortSignal;
  external?: ExternalKni;
  /** The guest's kernel; default: the appliance kernel of this system's release, else the first set up. */
  guestKernel?: Kernel;
  /** How long the guest may take to boot (default 20 min: nested TCG on a loaded machine). */
  bootTimeoutMs?: number;
}

/** RFC 2544's benchmarking range: never a real network. Path i uses 198.18.(10+i).0/30. */
const peerAddress = (i: number) => `198.18.${10 + i}.1`;
const guestAddress = (i: number) => `198.18.${10 + i}.2`;
const PREFIX = 30;

/** A refused, reset or busy control connection: the guest's iperf3 -s is between tests. */
const IPERF_RETRY = /refused|busy|reset by peer|unable to (connect|receive|send)|control socket has closed|timed out/i;

export class BenchAbortedError extends Error {
  constructor() {
    super('the benchmark was aborted');
    this.name = 'BenchAbortedError';
  }
}

/** The appliance kernel the guest boots: this system's own release if it is one, else the first set up. */
export function defaultGuestKernel(): Kernel {
  const kernels = [...loadKernels().values()];
  const k = kernels.find((x) => x.release === release()) ?? kernels[0];
  if (!k) throw new Error('no appliance kernel is set up: run scripts/setup.sh');
  return k;
}

/** A tool's version from its --version output, or null if it is missing. */
function versionOf(cmd: string, args: string[], re: RegExp): string | null {
  try {
    return re.exec(execaSync(cmd, args, { stdin: 'ignore', timeout: 10_000, reject: false }).stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}


interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: { seconds: number; bytes: number; bits_per_second: number; retransmits?: number; packets?: number };
    sum_received?: { seconds: number; bytes: number; bits_per_second: number; packets?: number; lost_packets?: number; lost_percent?: number };
  };
}

/**
 * One iperf3 result as the benchmark records it, from the client's JSON.
 * UDP datagrams received are counted from the bytes that arrived (all
 * datagrams have the payload size asked for), and those sent from the
 * sender's own count: iperf3's loss figures come from sequence numbers,
 * which its --omit handling is known to garble.
 */
export function parseIperf(
  protocol: Protocol,
  json: IperfJson,
  udpBytes: number,
): Pick<Run, 'seconds' | 'mbps' | 'retransmits' | 'datagrams' | 'pps' | 'lossPercent'> {
  const sent = json.end?.sum_sent;
  const got = json.end?.sum_received;
  if (!sent || !got) throw new Error(`iperf3 gave no summary${json.error ? `: ${json.error}` : ''}`);
  const seconds = got.seconds > 0 ? got.seconds : sent.seconds;
  const mbps = got.bits_per_second / 1e6;
  if (protocol === 'tcp') {
    return { seconds, mbps, retransmits: sent.retransmits ?? null, datagrams: null, pps: null, lossPercent: null };
  }
  const received = Math.round(got.bytes / udpBytes);
  const total = Math.max(sent.packets ?? Math.round(sent.bytes / udpBytes), received);
  return {
    seconds,
    mbps,
    retransmits: null,
    datagrams: { sent: total, received },
    pps: received / seconds,
    lossPercent: total > 0 ? ((total - received) / total) * 100 : 0,
  };
}

type NicBackend = z.input<typeof NicBackendSchema>;

interface PathSetup {
  id: PathId;
  index: number;
  /** Where the peer lives: a netns, or this one (an external interface's TAP port). */
  ns: string | undefined;
  backend: NicBackend;
  /** Descriptors this run opened and closes once qemu has its copies. */
  ownFd: number | undefined;
  /** After launch: TAPs move into their netns (qemu attached to them by name first). */
  afterLaunch: (() => Promise<void>) | undefined;
}

export async function runVhostBench(input: VhostBenchConfigInput, opts: VhostBenchOptions = {}): Promise<VhostBenchResult> {
  const config: VhostBenchConfig = VhostBenchConfigSchema.parse(input);
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal;
  const progress = (phase: string, fraction: number, message: string | null = null) => opts.onProgress?.({ phase, fraction: Math.min(1, Math.max(0, fraction)), message });
  const checkAbort = () => {
    if (signal?.aborted) throw new BenchAbortedError();
  };

  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces, TAP devices, /dev/kni)');
  const kniPaths = config.paths.filter((p) => pathInfo(p).backend === 'kni');
  if (opts.external) {
    if (kniPaths.length > 1) throw new Error(`an existing interface backs one KNI path, not ${kniPaths.join(' and ')}`);
    if (kniPaths[0] && pathInfo(kniPaths[0]).vnetHdr !== opts.external.vnetHdr) {
      throw new Error(`${opts.external.name}'s socket has VNET_HDR ${opts.external.vnetHdr ? 'on' : 'off'}, but the path is ${kniPaths[0]}`);
    }
  }
  if (config.vhost) {
    try {
      accessSync('/dev/vhost-net', constants.R_OK | constants.W_OK);
    } catch (err) {
      throw new Error(`vhost-net is not usable here: /dev/vhost-net: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  // The addon is loaded only when a KNI path needs it, so that a TAP-only run works without kni.ko.
  const native = kniPaths.length > 0 && !opts.external ? await import('../native/index.js') : undefined;
  const moduleInfo = native ? native.moduleInfo() : undefined;
  const kernel = opts.guestKernel ?? defaultGuestKernel();

  const tag = randomBytes(2).toString('hex');
  const nsName = (i: number) => `kniv-bench-${tag}-${i}`;
  const dev = (i: number, suffix: string) => `kvb${tag}${i}${suffix}`;
  const undo: (() => Promise<void> | void)[] = [];
  const sh = async (argv: string[]) => {
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'ignore', all: true });
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed: ${(r.all ?? '').trim()}`);
  };
  const inPeer = (ns: string | undefined, argv: string[]) => (ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv);

  const consoleLines: string[] = [];
  let vm: Vm | undefined;
  let kni: InstanceType<NonNullable<typeof native>['Kni']> | undefined;
  const runDir = mkdtempSync(join(tmpdir(), 'kniv-bench-'));
  undo.push(() => rmSync(runDir, { recursive: true, force: true }));

  try {
    progress('preparing', 0, `paths ${config.paths.join(', ')}`);
    const setups: PathSetup[] = [];
    for (const [index, id] of config.paths.entries()) {
      checkAbort();
      const { backend, vnetHdr } = pathInfo(id);
      const ns = backend === 'kni' && opts.external ? undefined : nsName(index);
      if (ns) {
        await sh(['ip', 'netns', 'add', ns]);
        undo.push(() => sh(['ip', 'netns', 'del', ns]).catch(() => undefined));
        await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      }
      if (backend === 'kni' && opts.external) {
        const peer = opts.external.peerDevice;
        await sh(['ip', 'addr', 'add', `${peerAddress(index)}/${PREFIX}`, 'dev', peer]);
        undo.push(() => sh(['ip', 'addr', 'del', `${peerAddress(index)}/${PREFIX}`, 'dev', peer]).catch(() => undefined));
        await sh(['ip', 'link', 'set', peer, 'up']);
        setups.push({ id, index, ns, backend: { kind: 'fd', fd: opts.external.fd }, ownFd: undefined, afterLaunch: undefined });
      } else if (backend === 'kni') {
        const a = dev(index, 'a');
        const b = dev(index, 'b');
        await sh(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
        undo.push(() => sh(['ip', 'link', 'del', a]).catch(() => undefined));
        await sh(['ip', 'link', 'set', b, 'netns', ns!]);
        await sh(['ip', '-n', ns!, 'addr', 'add', `${peerAddress(index)}/${PREFIX}`, 'dev', b]);
        await sh(['ip', '-n', ns!, 'link', 'set', b, 'up']);
        await sh(['ip', 'link', 'set', a, 'up']);
        kni ??= new native!.Kni();
        const iface = kni.create({ name: dev(index, 'k') });
        const plane = new native!.DataPlane([{ iface, port: { kind: 'packet', ifname: a } }]);
        undo.push(() => {
          plane.stop();
          iface.release();
        });
        native!.setVnetHdr(iface.name, vnetHdr);
        const fd = native!.enableSocket(iface.name);
        setups.push({ id, index, ns, backend: { kind: 'fd', fd }, ownFd: fd, afterLaunch: undefined });
      } else {
        const t = dev(index, 't');
        await sh(['ip', 'tuntap', 'add', 'dev', t, 'mode', 'tap']);
        // Wherever it is by then: the root netns, or the peer's.
        undo.push(async () => {
          await sh(['ip', 'link', 'del', t]).catch(() => undefined);
          if (ns) await sh(['ip', '-n', ns, 'link', 'del', t]).catch(() => undefined);
        });
        setups.push({
          id,
          index,
          ns,
          backend: { kind: 'tap', ifname: t, vnetHdr },
          ownFd: undefined,
          afterLaunch: async () => {
            await sh(['ip', 'link', 'set', t, 'netns', ns!]);
            await sh(['ip', '-n', ns!, 'addr', 'add', `${peerAddress(index)}/${PREFIX}`, 'dev', t]);
            await sh(['ip', '-n', ns!, 'link', 'set', t, 'up']);
          },
        });
      }
    }

    checkAbort();
    progress('booting guest', 0.02, `kernel ${kernel.release}, ${config.guestCpus} vCPU, ${config.guestMemoryMiB} MiB`);
    const boot = guestBoot(kernel, {
      net: setups.map((s) => ({ ifname: `eth${s.index}`, address: `${guestAddress(s.index)}/${PREFIX}` })),
      iperfServer: true,
    });
    const launchedAt = Date.now();
    try {
      vm = await launchVm({
        spec: {
          name: 'kniv-bench',
          vcpus: config.guestCpus,
          memoryMiB: config.guestMemoryMiB,
          boot,
          nics: setups.map((s) => ({ vhost: config.vhost, backend: s.backend })),
        },
        runDir,
        onConsole: (l) => consoleLines.push(l),
      });
    } finally {
      // qemu holds its own copies now.
      for (const s of setups) if (s.ownFd !== undefined) native!.closeFd(s.ownFd);
    }
    const guest = vm;
    log(`guest launched (qemu ${guest.pid}); waiting for it to boot`);
    for (const s of setups) await s.afterLaunch?.();

    const up = await waitForGuestReady(guest, { timeoutMs: opts.bootTimeoutMs ?? 20 * 60_000, signal, log }).catch((err: Error) => {
      throw signal?.aborted ? new BenchAbortedError() : err;
    });
    const bootSeconds = (Date.now() - launchedAt) / 1000;
    const errors = consoleLines.filter((l) => GUEST_ERROR.test(l));
    if (errors.length > 0) throw new Error(`the guest reported: ${errors.join('; ')}`);
    log(`guest ready after ${bootSeconds.toFixed(0)} s${up.faults.length ? `, after ${up.faults.length} faulted boot(s) were reset` : ''}`);
    // Faults while booting were reset (qemu/guest-boot.ts); one once the guest is up fails the run.
    const failIfFaulted = () => {
      const p = guest.kernelProblemsSince(up.readyMark)[0];
      if (p !== undefined) throw new Error(`the guest kernel reported a problem after it was up: ${formatProblem(p)}`);
    };
    progress('guest ready', 0.25, `booted in ${bootSeconds.toFixed(0)} s`);

    const status = await guest.vhostStatus();
    const vhost = setups.map((s) => ({ path: s.id, requested: status[s.index]!.requested, started: status[s.index]!.started }));
    const vhostFallback = guest.vhostFallback ?? null;
    const vhostVerified = vhostFallback === null && vhost.every((v) => v.started === v.requested);
    if (!vhostVerified) log(`vhost-net did not take every NIC over: ${JSON.stringify(vhost)}${vhostFallback ? `; qemu: ${vhostFallback}` : ''}`);

    for (const s of setups) {
      checkAbort();
      await reachable(inPeer(s.ns, ['ping', '-c', '1', '-W', '5', guestAddress(s.index)]), 120_000, signal, `${s.id}: the guest at ${guestAddress(s.index)} does not answer pings`);
    }

    // The first transfers through a freshly booted guest are slow while the
    // emulator translates the code on their path for the first time (under
    // nested TCG, for seconds): one unrecorded second each way on the first
    // path, so that the first path measured is not charged with it.
    const first = setups[0]!;
    progress('warming up', 0.25, `one second each way through ${first.id}, not recorded`);
    for (const reverse of [[], ['-R']]) {
      checkAbort();
      await iperf(inPeer(first.ns, ['iperf3', '-c', guestAddress(first.index), '-J', '--connect-timeout', '10000', '-t', '1', ...reverse]), 121_000, signal);
    }

    const cases: { s: PathSetup; protocol: Protocol; direction: Direction; repeat: number }[] = [];
    // Repeats outermost: each repeat measures every path once, so slow
    // changes in what the machine gives the guest spread over all paths.
    for (let repeat = 1; repeat <= config.repeat; repeat++) {
      for (const s of setups) for (const protocol of config.protocols) for (const direction of config.directions) cases.push({ s, protocol, direction, repeat });
    }
    const runs: Run[] = [];
    for (const [n, c] of cases.entries()) {
      checkAbort();
      const what = `${c.s.id} ${c.protocol.toUpperCase()} ${c.direction}`;
      progress(`measuring ${what}`, 0.25 + (0.73 * n) / cases.length, `run ${n + 1} of ${cases.length} (repeat ${c.repeat} of ${config.repeat})`);
      const before = config.vhost ? vhostWakeups(guest.pid) : 0;
      const { json, attempts } = await iperf(
        inPeer(c.s.ns, [
          'iperf3', '-c', guestAddress(c.s.index), '-J', '--connect-timeout', '10000',
          '-t', String(config.seconds),
          // Only TCP: with UDP, iperf3's omitted seconds garble its counters.
          ...(c.protocol === 'tcp' ? ['-O', String(config.omitSeconds)] : []),
          ...(c.direction === 'guest-to-host' ? ['-R'] : []),
          // -b counts payload bits.
          ...(c.protocol === 'udp' ? ['-u', '-l', String(config.udpBytes), '-b', String(config.udpRate * config.udpBytes * 8)] : []),
        ]),
        (config.seconds + config.omitSeconds) * 1000 + 120_000,
        signal,
      );
      const run: Run = {
        path: c.s.id,
        ...pathInfo(c.s.id),
        vhost: config.vhost,
        protocol: c.protocol,
        direction: c.direction,
        repeat: c.repeat,
        ...parseIperf(c.protocol, json, config.udpBytes),
        vhostWakeups: config.vhost ? vhostWakeups(guest.pid) - before : null,
        attempts,
      };
      runs.push(run);
      log(`${what}: ${run.protocol === 'tcp' ? `${run.mbps.toFixed(1)} Mbit/s, ${run.retransmits ?? '?'} retransmits` : `${(run.pps ?? 0).toFixed(0)} datagrams/s, ${(run.lossPercent ?? 0).toFixed(1)}% lost`}`);
      failIfFaulted();
    }
    progress('stopping guest', 0.99);
    await guest.stop();
    failIfFaulted();

    return VhostBenchResultSchema.parse({
      benchmark: 'vhost',
      version: 1,
      startedAt,
      seconds: (Date.now() - started) / 1000,
      system: {
        kernel: release(),
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        qemu: versionOf('qemu-system-x86_64', ['--version'], /version\s+(\S+)/),
        iperf3: versionOf('iperf3', ['--version'], /^iperf\s+(\S+)/),
        kthreadMode: moduleInfo?.kthreadMode ?? null,
        where: 'here',
        accel: null,
      },
      guest: {
        kernel: kernel.release,
        accel: kvmUsable() ? 'kvm' : 'tcg',
        vcpus: config.guestCpus,
        memoryMiB: config.guestMemoryMiB,
        bootSeconds,
        bootFaults: up.faults.map((f) => f.problem.line),
      },
      vhost,
      vhostFallback,
      vhostVerified,
      interface: opts.external?.name ?? null,
      config,
      runs,
      summary: summarise(runs),
    });
  } catch (err) {
    // A failed run leaves the guest's whole console behind (qemu/artifacts.ts),
    // unless the launcher already kept it for a kernel problem.
    if (vm && vm.kernelProblems.length === 0 && !(err instanceof BenchAbortedError)) {
      const kept = vm.keepConsole('bench-failed');
      if (kept) log(`the guest console is kept in ${kept}`);
    }
    throw err;
  } finally {
    if (vm && !vm.hasExited) await vm.stop({ quitTimeoutMs: 5000, termTimeoutMs: 5000 }).catch(() => undefined);
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (err) {
        log(`cleaning up: ${(err as Error).message}`);
      }
    }
    kni?.close();
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** Runs a command until it succeeds or time runs out. */
async function reachable(argv: string[], timeoutMs: number, signal: AbortSignal | undefined, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'ignore', all: true, ...(signal ? { cancelSignal: signal } : {}) });
    if (signal?.aborted) throw new BenchAbortedError();
    if (r.exitCode === 0) return;
    if (Date.now() > deadline) throw new Error(`${message}: ${(r.all ?? '').trim()}`);
    await sleep(1000, signal);
  }
}

/**
 * One iperf3 client run. The guest's server serves one test at a time and
 * needs a moment between tests in a slow guest: a refused, reset or busy
 * control connection is retried for up to 90 s.
 */
async function iperf(argv: string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<{ json: IperfJson; attempts: number }> {
  const deadline = Date.now() + 90_000;
  for (let attempts = 1; ; attempts++) {
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'ignore', timeout: timeoutMs, ...(signal ? { cancelSignal: signal } : {}) });
    if (signal?.aborted) throw new BenchAbortedError();
    let json: IperfJson = {};
    try {
      json = JSON.parse(r.stdout || '{}') as IperfJson;
    } catch {
      // iperf3 died before printing its JSON; stderr says why
    }
    if (r.exitCode === 0 && json.end?.sum_received && json.end.sum_sent) return { json, attempts };
    const error = json.error ?? (r.stderr || r.shortMessage || `exit status ${r.exitCode}`);
    if (!IPERF_RETRY.test(error) || Date.now() > deadline) throw new Error(`${argv.join(' ')} failed: ${error}`);
    await sleep(1000, signal);
  }
}
