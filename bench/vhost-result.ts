// The kni-vhost benchmark's configuration and result document: zod schemas
// (what the JSON file holds), the medians over repeats, and the table printed
// for people.
import { z } from 'zod';
import { align, fmtPps, formatHostLoad, groupBy, HostLoadSchema, median, resultHead, systemFields } from './stats.js';

/**
 * The guest NIC backends measured. Each is one NIC of the same guest:
 *   kni-vnethdr-off  a KNI interface's socket, VNET_HDR off (plain Ethernet frames)
 *   kni-vnethdr-on   a KNI interface's socket, VNET_HDR on (virtio-net headers, guest offloads on)
 *   tap-vnethdr-on   a TAP device as qemu normally opens it (IFF_VNET_HDR)
 *   tap-vnethdr-off  a TAP device opened without IFF_VNET_HDR (qemu's vnet_hdr=off)
 */
export const PATHS = ['kni-vnethdr-off', 'kni-vnethdr-on', 'tap-vnethdr-on', 'tap-vnethdr-off'] as const;
export const PathSchema = z.enum(PATHS);
export type PathId = z.infer<typeof PathSchema>;

export const BackendSchema = z.enum(['kni', 'tap']);
export type Backend = z.infer<typeof BackendSchema>;

export const PROTOCOLS = ['tcp', 'udp'] as const;
export const ProtocolSchema = z.enum(PROTOCOLS);
export type Protocol = z.infer<typeof ProtocolSchema>;

/** The same words as the service's API; "host" is the peer namespace on the machine that runs the guest. */
export const DIRECTIONS = ['host-to-guest', 'guest-to-host'] as const;
export const DirectionSchema = z.enum(DIRECTIONS);
export type Direction = z.infer<typeof DirectionSchema>;

export function pathInfo(path: PathId): { backend: Backend; vnetHdr: boolean } {
  return { backend: path.startsWith('kni') ? 'kni' : 'tap', vnetHdr: path.endsWith('-on') };
}

/**
 * Path names as a user writes them: a full name, a backend (both of its
 * VNET_HDR settings) or "all". Unknown words throw, naming the word.
 */
export function parsePaths(words: string[]): PathId[] {
  const out = new Set<PathId>();
  for (const word of words.flatMap((w) => w.split(',')).map((w) => w.trim()).filter(Boolean)) {
    if (word === 'all') PATHS.forEach((p) => out.add(p));
    else if (word === 'kni' || word === 'tap') PATHS.filter((p) => pathInfo(p).backend === word).forEach((p) => out.add(p));
    else {
      const p = PathSchema.safeParse(word);
      if (!p.success) throw new Error(`unknown path ${JSON.stringify(word)}: one of ${PATHS.join(', ')}, kni, tap or all`);
      out.add(p.data);
    }
  }
  // Always in the canonical order: the table and the guest's NICs follow it.
  return PATHS.filter((p) => out.has(p));
}

const unique = <T>(xs: T[]) => new Set(xs).size === xs.length;

export const VhostBenchConfigSchema = z
  .object({
    paths: z.array(PathSchema).min(1).refine(unique, 'each path once').default([...PATHS]),
    protocols: z.array(ProtocolSchema).min(1).refine(unique, 'each protocol once').default([...PROTOCOLS]),
    directions: z.array(DirectionSchema).min(1).refine(unique, 'each direction once').default([...DIRECTIONS]),
    /** Measured seconds of each iperf3 run. */
    seconds: z.number().int().min(1).max(300).default(5),
    /** Seconds a TCP run goes before iperf3 starts counting (-O: slow start, queues filling). */
    omitSeconds: z.number().int().min(0).max(30).default(1),
    repeat: z.number().int().min(1).max(20).default(3),
    /** UDP datagram payload (iperf3 -l); 64 B is a small packet, 106 B on the wire. */
    udpBytes: z.number().int().min(16).max(1472).default(64),
    /** UDP datagrams per second the sender offers; 0: as fast as it can (iperf3 -b 0). */
    udpRate: z.number().int().min(0).max(10_000_000).default(0),
    /** vhost-net on every NIC (false: qemu moves the packets itself, the baseline vhost is compared with). */
    vhost: z.boolean().default(true),
    guestCpus: z.number().int().min(1).max(8).default(1),
    guestMemoryMiB: z.number().int().min(128).max(4096).default(256),
  })
  .strict();
export type VhostBenchConfig = z.output<typeof VhostBenchConfigSchema>;
export type VhostBenchConfigInput = z.input<typeof VhostBenchConfigSchema>;

const Count = z.number().int().min(0);
const Rate = z.number().min(0);

/** What a run measured: one path (with vhost-net or not), protocol and direction. */
const CaseSchema = z.object({
  path: PathSchema,
  backend: BackendSchema,
  vnetHdr: z.boolean(),
  vhost: z.boolean(),
  protocol: ProtocolSchema,
  direction: DirectionSchema,
});

export const RunSchema = CaseSchema.extend({
  repeat: z.number().int().min(1),
  /** The window iperf3 measured, omitted seconds excluded. */
  seconds: z.number().positive(),
  /** What arrived, in Mbit/s of iperf3 payload (TCP: the receiver's goodput; UDP: datagram payload). */
  mbps: Rate,
  /** TCP: segments the sender retransmitted; UDP: null. */
  retransmits: Count.nullable(),
  /** UDP: datagrams the sender sent and the receiver got; TCP: null. */
  datagrams: z.object({ sent: Count, received: Count }).nullable(),
  /** UDP: datagrams received per second; TCP: null. */
  pps: Rate.nullable(),
  /** UDP: datagrams lost, in percent of those sent; TCP: null. */
  lossPercent: z.number().min(0).max(100).nullable(),
  /** Times all of qemu's vhost-net workers woke up during the run (null without vhost): they move the packets. */
  vhostWakeups: Count.nullable(),
  /** iperf3 attempts: the guest's server may still be busy with the previous test. */
  attempts: z.number().int().min(1),
});
export type Run = z.infer<typeof RunSchema>;

export const SummarySchema = CaseSchema.extend({
  runs: z.number().int().min(1),
  /** Medians over the repeats. */
  mbps: Rate,
  retransmits: z.number().nullable(),
  pps: Rate.nullable(),
  lossPercent: z.number().nullable(),
});
export type Summary = z.infer<typeof SummarySchema>;

export const VhostBenchResultSchema = z.object({
  /** seconds: the whole run: set-up, guest boot, every iperf3 run, teardown. */
  ...resultHead('vhost'),
  /** The system that ran the guest (the appliance VM, or this machine with --here). */
  system: z.object({
    ...systemFields,
    qemu: z.string().nullable(),
    iperf3: z.string().nullable(),
    kthreadMode: z.enum(['single', 'multiple']).nullable(),
    where: z.enum(['appliance-vm', 'here']),
    /** The appliance VM's own accelerator (appliance-vm only). */
    accel: z.enum(['tcg', 'kvm']).nullable(),
  }),
  guest: z.object({
    kernel: z.string(),
    /** kvm when the system running the guest has usable KVM (accel "auto"), else tcg: then the figures are emulation speed. */
    accel: z.enum(['tcg', 'kvm']),
    vcpus: z.number().int().min(1),
    memoryMiB: z.number().int().min(1),
    /** Launch until the guest reported ready (its NICs up, iperf3 -s started). */
    bootSeconds: z.number().min(0),
    /** The first problem line of each boot that faulted and was reset before the guest came up. */
    bootFaults: z.array(z.string()).default([]),
  }),
  /** Per path: vhost-net asked for, and started (qemu's x-query-virtio-status) once the guest was up. */
  vhost: z.array(z.object({ path: PathSchema, requested: z.boolean(), started: z.boolean() })),
  /** What qemu printed if vhost-net could not take a NIC over, else null. */
  vhostFallback: z.string().nullable(),
  /** Every NIC that asked for vhost-net had it, and qemu printed no fallback. */
  vhostVerified: z.boolean(),
  /** The KNI path ran through this existing interface (the service), or null: temporary interfaces. */
  interface: z.string().nullable(),
  /** When run from the host into the appliance VM: the host running it, whose other load is noise. */
  host: HostLoadSchema.optional(),
  config: VhostBenchConfigSchema,
  runs: z.array(RunSchema),
  summary: z.array(SummarySchema),
});
export type VhostBenchResult = z.infer<typeof VhostBenchResultSchema>;

const medianOrNull = (values: (number | null)[]): number | null =>
  values.every((v) => v !== null) && values.length > 0 ? median(values as number[]) : null;

/** One summary per path, protocol and direction that has runs, medians over its repeats, in the order the runs came. */
export function summarise(runs: Run[]): Summary[] {
  return groupBy(runs, (r) => `${r.path}/${r.protocol}/${r.direction}`).map((g) => {
    const first = g[0]!;
    return {
      path: first.path,
      backend: first.backend,
      vnetHdr: first.vnetHdr,
      vhost: first.vhost,
      protocol: first.protocol,
      direction: first.direction,
      runs: g.length,
      mbps: median(g.map((r) => r.mbps)),
      retransmits: medianOrNull(g.map((r) => r.retransmits)),
      pps: medianOrNull(g.map((r) => r.pps)),
      lossPercent: medianOrNull(g.map((r) => r.lossPercent)),
    };
  });
}

const fmtMbps = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(3));

/** The human summary: one row per protocol and direction, the paths side by side. */
export function formatTable(result: VhostBenchResult): string {
  const s = result.system;
  const g = result.guest;
  const c = result.config;
  const where = s.where === 'appliance-vm' ? `the appliance VM (${s.accel?.toUpperCase() ?? '?'})` : 'this system';
  const lines = [
    'kni-vhost: guest <-> host through KNI sockets and TAP devices, vhost-net ' + (c.vhost ? 'on' : 'off'),
    `guest: kernel ${g.kernel}, ${g.vcpus} vCPU, ${g.memoryMiB} MiB, ${g.accel.toUpperCase()}, booted in ${g.bootSeconds.toFixed(0)} s${g.bootFaults.length ? ` (${g.bootFaults.length} faulted boot(s) reset first)` : ''}; run in ${where}, kernel ${s.kernel}, ${s.cpus} CPUs`,
    ...(g.accel === 'tcg' ? ['TCG: the guest CPU is emulated, so these figures mostly measure emulation; compare paths side by side, not with hardware'] : []),
    `iperf3 ${c.seconds} s per run (TCP after ${c.omitSeconds} s omitted), median of ${c.repeat}; TCP: Mbit/s received (retransmits); UDP ${c.udpBytes} B, ${c.udpRate > 0 ? `${c.udpRate} datagrams/s offered` : 'sent as fast as the sender can'}: datagrams/s received (loss)`,
    `vhost-net: ${result.vhost.map((v) => `${v.path} ${v.requested ? (v.started ? 'started' : 'NOT started') : 'off'}`).join(', ')}${result.vhostFallback ? `; qemu: ${result.vhostFallback}` : ''}`,
    '',
  ];
  const rows: string[][] = [['protocol', 'direction', ...c.paths]];
  for (const p of c.protocols) {
    for (const d of c.directions) {
      const row = [p === 'tcp' ? 'TCP' : `UDP ${c.udpBytes} B`, d];
      for (const path of c.paths) {
        const x = result.summary.find((y) => y.path === path && y.protocol === p && y.direction === d);
        if (!x) row.push('-');
        else if (p === 'tcp') row.push(`${fmtMbps(x.mbps)} Mbit/s${x.retransmits !== null ? ` (${Math.round(x.retransmits)})` : ''}`);
        else row.push(`${x.pps === null ? '-' : fmtPps(x.pps)} pps (${(x.lossPercent ?? 0).toFixed(0)}%)`);
      }
      rows.push(row);
    }
  }
  lines.push(...align(rows), '');
  const h = result.host;
  if (h) lines.push(formatHostLoad(h));
  lines.push(`whole run: ${result.seconds.toFixed(0)} s`);
  return `${lines.join('\n')}\n`;
}
