// The API's resources and requests. These zod schemas are the single source of
// truth: request validation, the types the code uses, and the OpenAPI document.
import { z } from 'zod';

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
    dropNoBuffer: z.number(),
    dropRxFull: z.number(),
    dropTooBig: z.number(),
    dropPortError: z.number(),
    badBuffer: z.number(),
    portErrors: z.number(),
    requests: z.number(),
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

export const BenchCreateSchema = z
  .object({
    interface: IfNameSchema.optional().describe('benchmark through this interface; default: a temporary one'),
    direction: z.enum(['guest-to-host', 'host-to-guest', 'both']).default('both'),
    durationS: z.number().int().min(1).max(300).default(10),
    vhost: z.boolean().default(true),
  })
  .strict()
  .default({ direction: 'both', durationS: 10, vhost: true });
export type BenchCreate = z.output<typeof BenchCreateSchema>;

export const BenchResultSchema = z.object({
  results: z.array(
    z.object({
      direction: z.enum(['guest-to-host', 'host-to-guest']),
      mbps: z.number(),
      retransmits: z.number().nullable(),
    }),
  ),
  accel: z.string().nullable().describe('kvm or tcg: absolute numbers under TCG say little'),
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
