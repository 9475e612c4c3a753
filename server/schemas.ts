// The API's resources and requests. These zod schemas are the single source of
// truth: request validation, the types the code uses, and the OpenAPI document.
import { z } from 'zod';
import { PATHS } from '../bench/vhost-result.js';

// Limits: what one service manages, and how long a name can be.
export const LIMITS = {
  interfaces: 64,
  vms: 32,
  nicsPerVm: 8,
  cmdline: 2048,
  path: 4096,
  benchmarksKept: 200,
  consoleBytes: 256 * 1024,
} as const;

export const IfNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$/, 'an interface name: 1 to 15 letters, digits, _ . or -, not starting with .')
  .describe('a Linux interface name');

export const VmNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a VM name: 1 to 63 letters, digits, _ . or -, starting with a letter or digit');

export const MacSchema = z
  .string()
  .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'a MAC address like 02:00:00:00:00:01')
  .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, 'a unicast MAC address (the first octet even)')
  .transform((m) => m.toLowerCase());

export const MtuSchema = z.number().int().min(68).max(9000);

const AbsPathSchema = z
  .string()
  .min(2)
  .max(LIMITS.path)
  .startsWith('/', 'an absolute path')
  .refine((p) => !p.includes('\0') && !p.split('/').includes('..'), 'a path without NUL bytes or .. components');

const Timestamp = z.string().describe('ISO 8601 time');

// --- Interfaces ---------------------------------------------------------------

export const PortSpecSchema = z
  .discriminatedUnion('kind', [
    z
      .object({ kind: z.literal('packet'), ifname: IfNameSchema.describe('an existing host interface (a NIC or a veth)') })
      .strict()
      .describe('AF_PACKET on an existing host interface'),
    z
      .object({ kind: z.literal('tap'), ifname: IfNameSchema.describe('the TAP device kniv creates') })
      .strict()
      .describe('a TAP device created for this interface'),
  ])
  .describe('the port the data plane forwards the interface to');
export type PortSpec = z.infer<typeof PortSpecSchema>;

export const InterfaceCreateSchema = z
  .object({
    name: IfNameSchema,
    port: PortSpecSchema,
    mac: MacSchema.optional().describe('default: a random locally administered address'),
    mtu: MtuSchema.default(1500),
    maxMtu: MtuSchema.optional().describe('the largest MTU it will take at runtime; sizes its buffers (default: the larger of mtu and 1500)'),
    kthreadCpu: z.number().int().min(0).max(4095).optional().describe("pin the interface's kernel thread to this CPU (kthread_mode=multiple)"),
    vnetHdr: z.boolean().optional().describe("virtio-net headers on the interface's socket; default: the module's vnet_hdr parameter"),
    up: z.boolean().default(true).describe('administratively up after creation'),
  })
  .strict()
  .refine((s) => s.maxMtu === undefined || s.mtu <= s.maxMtu, { message: 'at most maxMtu', path: ['mtu'] });
export type InterfaceCreate = z.output<typeof InterfaceCreateSchema>;

export const InterfacePatchSchema = z
  .object({
    mtu: MtuSchema.optional(),
    mac: MacSchema.optional(),
    up: z.boolean().optional(),
    carrier: z.boolean().optional().describe('only while the interface is up'),
    vnetHdr: z.boolean().optional().describe('only while no VM holds the socket'),
  })
  .strict()
  .refine((p) => Object.values(p).some((v) => v !== undefined), 'at least one of mtu, mac, up, carrier, vnetHdr');
export type InterfacePatch = z.output<typeof InterfacePatchSchema>;

export const CountersSchema = z.object({
  netdev: z.object({
    rxPackets: z.number(),
    rxBytes: z.number(),
    rxDropped: z.number(),
    txPackets: z.number(),
    txBytes: z.number(),
    txDropped: z.number(),
  }),
  dataPlane: z.object({
    toKernelPackets: z.number(),
    toKernelBytes: z.number(),
    toPortPackets: z.number(),
    toPortBytes: z.number(),
    toKernelGso: z.number(),
    toPortGso: z.number(),
    toPortCut: z.number(),
    dropNoBuffer: z.number(),
    dropRxFull: z.number(),
    dropTooBig: z.number(),
    dropPortError: z.number(),
    badBuffer: z.number(),
    portErrors: z.number(),
    requests: z.number(),
    sleeps: z.number(),
    kernelKicks: z.number(),
  }),
});
export type Counters = z.infer<typeof CountersSchema>;

export const InterfaceStateSchema = z
  .enum(['active', 'failed'])
  .describe('active: the netdev exists and its data plane runs; failed: it could not be (re-)created, see error');

export const InterfaceSchema = z.object({
  name: z.string(),
  state: InterfaceStateSchema,
  error: z.string().nullable(),
  port: PortSpecSchema,
  kthreadCpu: z.number().nullable(),
  maxMtu: z.number(),
  ifindex: z.number().nullable(),
  mac: z.string().nullable(),
  mtu: z.number().nullable(),
  up: z.boolean().nullable(),
  carrier: z.boolean().nullable(),
  vnetHdr: z.boolean().nullable().describe('null when this kni.ko has no KNI socket'),
  socket: z.object({
    attached: z.boolean().describe('a VM holds the socket'),
    vm: z.string().nullable(),
  }),
  counters: CountersSchema.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Interface = z.infer<typeof InterfaceSchema>;

// --- VMs ----------------------------------------------------------------------

export const BootSpecSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('kernel'),
      kernel: AbsPathSchema,
      initrd: AbsPathSchema.optional(),
      cmdline: z.string().max(LIMITS.cmdline).regex(/^[\x20-\x7e]*$/, 'printable ASCII').default(''),
    })
    .strict(),
  z
    .object({
      kind: z.literal('disk'),
      image: AbsPathSchema,
      format: z.enum(['raw', 'qcow2']).default('raw'),
    })
    .strict(),
]);

export const NicSpecSchema = z
  .object({
    interface: IfNameSchema.describe('the KNI interface whose socket backs this NIC'),
    mac: MacSchema.optional(),
    vhost: z.boolean().default(true).describe('vhost-net moves the packets (off: qemu reads and writes the socket itself)'),
  })
  .strict();

export const VmCreateSchema = z
  .object({
    name: VmNameSchema,
    vcpus: z.number().int().min(1).max(16).default(1),
    memoryMiB: z.number().int().min(64).max(65536).default(512),
    boot: BootSpecSchema,
    nics: z
      .array(NicSpecSchema)
      .max(LIMITS.nicsPerVm)
      .default([])
      .refine((nics) => new Set(nics.map((n) => n.interface)).size === nics.length, 'each interface at most once per VM'),
  })
  .strict();
export type VmCreate = z.output<typeof VmCreateSchema>;

export const VM_STATES = ['defined', 'starting', 'running', 'stopping', 'stopped', 'failed'] as const;
export const VmStateSchema = z
  .enum(VM_STATES)
  .describe('defined → starting → running → stopping → stopped; failed when qemu could not start or died');
export type VmState = z.infer<typeof VmStateSchema>;

export const VmSchema = z.object({
  name: z.string(),
  spec: VmCreateSchema,
  state: VmStateSchema,
  error: z.string().nullable().describe('why the VM failed, or what went wrong last'),
  degraded: z.array(z.string()).describe('problems of a running VM, e.g. NICs whose interface was re-created under it'),
  pid: z.number().nullable(),
  runStatus: z.string().nullable().describe("qemu's own run state from QMP query-status, while it runs"),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  startedAt: Timestamp.nullable(),
});
export type Vm = z.infer<typeof VmSchema>;

export const VmStopSchema = z
  .object({
    force: z.boolean().default(false).describe('skip the graceful QMP quit'),
  })
  .strict()
  .default({ force: false });

export const ConsoleQuerySchema = z
  .object({
    bytes: z.coerce.number().int().min(1).max(LIMITS.consoleBytes).default(16384).describe('how much of the end of the log'),
  })
  .strict();

// --- Benchmarks ---------------------------------------------------------------

const BenchPathSchema = z
  .enum(PATHS)
  .describe('kni-vnethdr-off|on: a KNI socket with VNET_HDR off or on; tap-vnethdr-on|off: the TAP baseline with IFF_VNET_HDR or without');
const BenchDirectionSchema = z.enum(['guest-to-host', 'host-to-guest']);
const unique = <T>(xs: T[]) => new Set(xs).size === xs.length;

export const BenchCreateSchema = z
  .object({
    interface: IfNameSchema.optional().describe(
      'run the KNI path through this interface (active, free, with a TAP port: the peer address goes on that TAP for the run); default: temporary interfaces',
    ),
    paths: z
      .array(BenchPathSchema)
      .min(1)
      .refine(unique, 'each path at most once')
      .optional()
      .describe("NICs of the one guest the run boots; default: all four, or with interface that interface's KNI path at its vnetHdr setting"),
    protocols: z.array(z.enum(['tcp', 'udp'])).min(1).refine(unique, 'each protocol at most once').default(['tcp', 'udp']),
    direction: z.enum(['guest-to-host', 'host-to-guest', 'both']).default('both'),
    durationS: z.number().int().min(1).max(300).default(10).describe('measured seconds of each iperf3 run'),
    repeat: z.number().int().min(1).max(5).default(1).describe('runs of each case; results are medians'),
    udpPayloadBytes: z.number().int().min(16).max(1472).default(64).describe('UDP datagram payload'),
    vhost: z.boolean().default(true).describe('vhost-net on every NIC (off: qemu moves the packets)'),
  })
  .strict()
  .superRefine((s, ctx) => {
    const kni = (s.paths ?? []).filter((p) => p.startsWith('kni'));
    if (s.interface !== undefined && s.paths !== undefined && kni.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['paths'],
        message: `with interface, exactly one kni path (an interface has one socket), not ${kni.length}`,
      });
    }
  })
  .default({ protocols: ['tcp', 'udp'], direction: 'both', durationS: 10, repeat: 1, udpPayloadBytes: 64, vhost: true });
export type BenchCreate = z.output<typeof BenchCreateSchema>;
export type BenchPath = z.infer<typeof BenchPathSchema>;

export const BenchResultItemSchema = z.object({
  direction: BenchDirectionSchema,
  mbps: z.number().describe('median Mbit/s that arrived (TCP goodput; UDP datagram payload)'),
  retransmits: z.number().nullable().describe('TCP: median segments retransmitted; UDP: null'),
  path: BenchPathSchema,
  backend: z.enum(['kni', 'tap']).describe("the NIC's backend: a KNI interface's socket, or a TAP device (the baseline)"),
  vnetHdr: z.boolean().describe('virtio-net headers between qemu/vhost-net and the backend'),
  vhost: z.boolean().describe('vhost-net moved the packets'),
  protocol: z.enum(['tcp', 'udp']),
  packetsPerSecond: z.number().nullable().describe('UDP: median datagrams received per second; TCP: null'),
  lossPercent: z.number().nullable().describe('UDP: median share of datagrams lost; TCP: null'),
  runs: z.number().int().describe('repeats the medians are over'),
});
export type BenchResultItem = z.infer<typeof BenchResultItemSchema>;

export const BenchResultSchema = z.object({
  results: z.array(BenchResultItemSchema).describe('one per path, protocol and direction measured'),
  accel: z.string().nullable().describe("the guest's accelerator, kvm or tcg: under TCG the figures mostly measure emulation"),
  kernel: z.string().describe('the kernel the service (and vhost-net, kni.ko) runs on'),
  guest: z.object({
    kernel: z.string(),
    vcpus: z.number().int(),
    memoryMiB: z.number().int(),
    bootSeconds: z.number().describe('launch until the guest was ready'),
    bootFaults: z
      .array(z.string())
      .default([])
      .describe('the first console line of each boot whose kernel faulted before the guest was up; each was reset and booted again'),
  }),
  durationS: z.number().int().describe('measured seconds of each iperf3 run'),
  repeat: z.number().int(),
  udpPayloadBytes: z.number().int(),
  vhostStatus: z
    .array(z.object({ path: BenchPathSchema, requested: z.boolean(), started: z.boolean() }))
    .describe("per path, from qemu's x-query-virtio-status once the guest was up"),
  vhostFallback: z.string().nullable().describe('what qemu printed if vhost-net could not take a NIC over'),
  vhostVerified: z.boolean().describe('every NIC that asked for vhost-net had it and qemu printed no fallback'),
  interface: z.string().nullable().describe('the existing interface the KNI path ran through, or null (temporary ones)'),
  seconds: z.number().describe('the whole run, guest boot included'),
});
export type BenchResult = z.infer<typeof BenchResultSchema>;

export const BenchProgressSchema = z.object({
  phase: z.string(),
  fraction: z.number().min(0).max(1),
  message: z.string().nullable(),
});
export type BenchProgress = z.infer<typeof BenchProgressSchema>;

export const BenchmarkSchema = z.object({
  id: z.string(),
  spec: BenchCreateSchema,
  state: z.enum(['running', 'succeeded', 'failed']),
  progress: BenchProgressSchema.nullable(),
  result: BenchResultSchema.nullable(),
  error: z.string().nullable(),
  createdAt: Timestamp,
  finishedAt: Timestamp.nullable(),
});
export type Benchmark = z.infer<typeof BenchmarkSchema>;

// --- Common -------------------------------------------------------------------

export const NameParamsSchema = z.object({ name: z.string().min(1).max(64) }).strict();
export const IdParamsSchema = z.object({ id: z.string().regex(/^[0-9a-f-]{36}$/, 'a benchmark id') }).strict();
export const EmptyQuerySchema = z.object({}).strict();
export const ListSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });
