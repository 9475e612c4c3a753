// The real BenchRunner: the kni-vhost benchmark (bench/vhost.ts) run inside the
// service's own process, where kni.ko is (natively, or in the appliance VM).
// A request becomes the benchmark's config, its progress becomes
// BenchProgress, its document becomes the API's BenchResult.
import { accessSync, constants, existsSync } from 'node:fs';
import { execaSync } from 'execa';
import { runVhostBench, type BenchProgress as VhostProgress } from '../../bench/vhost.js';
import { PATHS, pathInfo, type PathId, type VhostBenchConfigInput, type VhostBenchResult } from '../../bench/vhost-result.js';
import { loadKernels } from '../../qemu/kernels.js';
import type { Availability, BenchInterface, BenchRunner } from '../drivers.js';
import type { BenchCreate, BenchProgress, BenchResult } from '../schemas.js';

/** The paths a request measures: its own, or all four, or with an interface that interface's KNI path. */
export function benchPaths(spec: BenchCreate, iface?: Pick<BenchInterface, 'vnetHdr'>): PathId[] {
  if (spec.paths) return PATHS.filter((p) => spec.paths!.includes(p));
  if (iface) return [iface.vnetHdr ? 'kni-vnethdr-on' : 'kni-vnethdr-off'];
  return [...PATHS];
}

/** BenchCreate → the benchmark's config. */
export function benchConfig(spec: BenchCreate, iface?: Pick<BenchInterface, 'vnetHdr'>): VhostBenchConfigInput {
  return {
    paths: benchPaths(spec, iface),
    protocols: spec.protocols,
    directions: spec.direction === 'both' ? ['host-to-guest', 'guest-to-host'] : [spec.direction],
    seconds: spec.durationS,
    omitSeconds: 1,
    repeat: spec.repeat,
    udpBytes: spec.udpPayloadBytes,
    vhost: spec.vhost,
  };
}

/** The benchmark's document → the API's result: the medians, and what the run was. */
export function benchResult(r: VhostBenchResult): BenchResult {
  return {
    results: r.summary.map((s) => ({
      direction: s.direction,
      mbps: s.mbps,
      retransmits: s.retransmits,
      path: s.path,
      backend: s.backend,
      vnetHdr: s.vnetHdr,
      vhost: s.vhost,
      protocol: s.protocol,
      packetsPerSecond: s.pps,
      lossPercent: s.lossPercent,
      runs: s.runs,
    })),
    accel: r.guest.accel,
    kernel: r.system.kernel,
    guest: { kernel: r.guest.kernel, vcpus: r.guest.vcpus, memoryMiB: r.guest.memoryMiB, bootSeconds: r.guest.bootSeconds, bootFaults: r.guest.bootFaults },
    durationS: r.config.seconds,
    repeat: r.config.repeat,
    udpPayloadBytes: r.config.udpBytes,
    vhostStatus: r.vhost,
    vhostFallback: r.vhostFallback,
    vhostVerified: r.vhostVerified,
    interface: r.interface,
    seconds: r.seconds,
  };
}

function runs(cmd: string, args: string[]): boolean {
  try {
    return execaSync(cmd, args, { stdin: 'ignore', reject: false, timeout: 10_000 }).exitCode === 0;
  } catch {
    return false;
  }
}

type Run = typeof runVhostBench;

export class KniVhostBench implements BenchRunner {
  private checked: Availability | undefined;

  constructor(
    private readonly log: (line: string) => void = () => undefined,
    private readonly run_: Run = runVhostBench,
  ) {}

  /** What the benchmark needs, checked once (none of it changes while the service runs). */
  available(): Availability {
    this.checked ??= this.check();
    return this.checked;
  }

  private check(): Availability {
    if (process.getuid?.() !== 0) return { ok: false, reason: 'the benchmark needs root (network namespaces, TAP devices); the service does not run as root' };
    if (!existsSync('/dev/kni')) return { ok: false, reason: 'kni.ko is not loaded (/dev/kni does not exist)' };
    try {
      accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
    } catch {
      return { ok: false, reason: '/dev/net/tun cannot be opened: no TAP devices for the baseline' };
    }
    if (!runs('qemu-system-x86_64', ['--version'])) return { ok: false, reason: 'qemu-system-x86_64 is not installed' };
    if (!runs('iperf3', ['--version'])) return { ok: false, reason: 'iperf3 is not installed' };
    try {
      if (loadKernels().size === 0) return { ok: false, reason: 'no appliance kernel for the guest: run scripts/setup.sh' };
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
    return { ok: true };
  }

  async run(spec: BenchCreate, onProgress: (p: BenchProgress) => void, signal: AbortSignal, iface?: BenchInterface): Promise<BenchResult> {
    const config = benchConfig(spec, iface);
    const kni = config.paths?.find((p) => pathInfo(p).backend === 'kni');
    const result = await this.run_(config, {
      signal,
      log: this.log,
      onProgress: (p: VhostProgress) => onProgress({ phase: p.phase, fraction: p.fraction, message: p.message }),
      ...(iface && kni ? { external: { name: iface.name, fd: iface.fd, vnetHdr: iface.vnetHdr, peerDevice: iface.peerDevice } } : {}),
    });
    return benchResult(result);
  }
}
