// Typed API over the raw binding: the only module the rest of kniv imports.
// Inputs are validated here with zod; the binding only converts them.
import { EventEmitter } from 'node:events';
import { closeSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { z } from 'zod';

interface RawStats {
  toKernelPackets: number; toKernelBytes: number; toPortPackets: number; toPortBytes: number;
  /** Of toKernelPackets: GSO super-frames from the port, queued whole (the kernel cuts them if it must). */
  toKernelGso: number;
  /** Of toPortPackets: GSO super-frames the port took whole, with their virtio-net header (AF_PACKET). */
  toPortGso: number;
  /** Of toPortPackets: GSO super-frames the data plane cut into segments for a port without virtio-net headers. */
  toPortCut: number;
  dropNoBuffer: number; dropRxFull: number; dropTooBig: number; dropPortError: number;
  badBuffer: number; portErrors: number; requests: number;
  /** Times the data plane slept until the port or the kernel woke it. */
  sleeps: number;
  /** Doorbells rung: the kernel thread was asleep when a frame or an answer was queued. */
  kernelKicks: number;
}
interface RawInterface {
  id: number; name: string; ifindex: number; mac: Buffer; mtu: number; minMtu: number; maxMtu: number;
  bufCount: number; bufSize: number; fifoEntries: number;
  release(): void; stats(): RawStats;
  openSocket(cloexec: boolean): number;
}
interface RawRequest { seq: number; type: number; value: number; mac: Buffer }
interface RawBinding {
  abiVersion: number;
  info(path?: string): ModuleInfo;
  enableSocket(ifname: string): number;
  Control: new (path?: string) => { create(o: object): RawInterface; close(): void };
  DataPlane: new (
    links: { iface: RawInterface; port: Port }[],
    onNotify: ((ifaceId: number, r: RawRequest) => void) | undefined,
    opts: { idleUs: number; cpu: number },
  ) => { stop(): void };
}

const require = createRequire(import.meta.url);
// Loaded from dist/native/index.js, two levels below the project root.
const raw = require('../../native/build/Release/kniv.node') as RawBinding;

/** An error from a system call made by the addon, shaped like Node's own. */
export class KniError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(message: string, errno: number, syscall: string) {
    super(message);
    this.name = 'KniError';
    this.errno = errno;
    this.syscall = syscall;
    this.code = errnoName(errno);
  }
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return 'UNKNOWN';
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as { message: string; errno?: unknown; syscall?: unknown };
    if (typeof e.errno === 'number' && typeof e.syscall === 'string') throw new KniError(e.message, e.errno, e.syscall);
    throw err;
  }
}

/** The ABI version this addon was built against (KNI_ABI_VERSION). */
export const addonAbiVersion: number = raw.abiVersion;

export interface ModuleInfo {
  abiVersion: number;
  kthreadMode: 'single' | 'multiple';
  /** Interfaces alive in the module, all processes together. */
  interfaces: number;
  /** Shared memory the module still holds, mapped or not. */
  sharedMemoryBytes: number;
  /** Kernel threads running. */
  threads: number;
  /** KNI sockets alive (attached to an interface or not). */
  sockets: number;
}

/** Ask the loaded kni.ko what it is, through KNI_IOCTL_INFO on /dev/kni. */
export function moduleInfo(devicePath?: string): ModuleInfo {
  return wrap(() => raw.info(devicePath));
}

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;
const MacSchema = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'a MAC address like 02:00:00:00:00:01');
const IfNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'an interface name: 1 to 15 letters, digits, _ . or -')
  .refine((n) => n !== '.' && n !== '..', 'an interface name, not . or ..');
const InfoStringSchema = z.string().max(31).regex(/^[\x20-\x7e]*$/, 'printable ASCII');

export const InterfaceOptionsSchema = z.object({
  name: IfNameSchema,
  mac: MacSchema.optional(),
  mtu: z.number().int().min(68).max(65535).optional(),
  minMtu: z.number().int().min(68).max(65535).optional(),
  maxMtu: z.number().int().min(68).max(65535).optional(),
  fifoEntries: z.number().int().min(16).max(65536).refine(isPowerOfTwo, 'a power of two').default(1024),
  bufCount: z.number().int().min(16).max(65536).default(2048),
  bufSize: z.number().int().min(256).max(65536).multipleOf(64).default(2048),
  cpu: z.number().int().min(0).max(4095).default(0),
  bind: z.boolean().default(false),
  /**
   * KNI_CREATE_F_OFFLOADS: the netdev offers SG, checksum and TSO to the
   * stack and the data plane's port finishes them (AF_PACKET and TAP with
   * virtio-net headers whole; other ports in userspace).
   */
  offloads: z.boolean().default(true),
  parent: z
    .object({ driverName: InfoStringSchema, driverVersion: InfoStringSchema, busInfo: InfoStringSchema, firmwareVersion: InfoStringSchema })
    .partial()
    .optional(),
});
export type InterfaceOptions = z.input<typeof InterfaceOptionsSchema>;

export const PortSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('packet'), ifname: IfNameSchema }),
  /** vnetHdr: IFF_VNET_HDR with checksum/TSO offloads, so super-frames cross whole (the relay's TCP baseline). */
  z.object({ kind: z.literal('tap'), ifname: IfNameSchema, vnetHdr: z.boolean().default(false) }),
  z.object({
    kind: z.literal('generator'),
    frame: z.instanceof(Buffer).refine((b) => b.length >= 14 && b.length <= 65535, 'a frame of 14 to 65535 bytes'),
    count: z.number().int().min(0).default(0),
    pps: z.number().int().min(0).default(0),
  }),
  z.object({ kind: z.literal('sink') }),
]);
export type Port = z.output<typeof PortSchema>;

const sockAttr = (ifname: string, attr: string) => `/sys/class/net/${IfNameSchema.parse(ifname)}/${attr}`;

/** An interface's KNI socket as sysfs shows it. */
export interface SocketStatus {
  enabled: boolean;
  /** Its descriptor number in the process that enabled it, or -1. */
  fd: number;
  vnetHdr: boolean;
}

/**
 * Enables `ifname`'s KNI socket (the vhost-net backend) in this process and
 * returns its descriptor, marked close-on-exec so that only the child it is
 * handed to (through a stdio slot) gets it. Close it with closeFd() once the
 * child has it. EBUSY if the interface already has a socket.
 */
export function enableSocket(ifname: string): number {
  return wrap(() => raw.enableSocket(IfNameSchema.parse(ifname)));
}

/** Detaches `ifname`'s socket; whoever holds it keeps a socket that carries nothing. */
export function disableSocket(ifname: string): void {
  writeFileSync(sockAttr(ifname, 'sock_en'), '0');
}

/** Sets whether `ifname`'s next socket carries virtio-net headers; EBUSY while one is enabled. */
export function setVnetHdr(ifname: string, on: boolean): void {
  writeFileSync(sockAttr(ifname, 'vnet_hdr'), on ? '1' : '0');
}

export function socketStatus(ifname: string): SocketStatus {
  const read = (attr: string) => readFileSync(sockAttr(ifname, attr), 'utf8').trim();
  return { enabled: read('sock_en') === '1', fd: Number(read('sock_fd')), vnetHdr: read('vnet_hdr') === '1' };
}

/** Closes a descriptor enableSocket() returned. */
export function closeFd(fd: number): void {
  closeSync(fd);
}

export const REQUEST_TYPES = { 1: 'mtu', 2: 'link', 3: 'mac', 4: 'promisc', 5: 'allmulti' } as const;
export type RequestType = (typeof REQUEST_TYPES)[keyof typeof REQUEST_TYPES];

/**
 * A control notification: a change made with `ip`/`ethtool` on the interface,
 * which the kernel has already applied (nothing waits for userspace under
 * RTNL). KniInterface emits them as 'notify' events while a data plane serves it.
 */
export interface ControlNotification {
  type: RequestType;
  /** mtu: the new MTU; link, promisc, allmulti: 1 on, 0 off. */
  value: number;
  /** mac: the new address. */
  mac: string;
}

export class KniInterface extends EventEmitter {
  readonly id: number;
  readonly name: string;
  readonly ifindex: number;
  readonly mac: string;
  readonly mtu: number;
  readonly minMtu: number;
  readonly maxMtu: number;

  constructor(readonly raw: RawInterface, private readonly owner: Kni) {
    super();
    this.id = raw.id;
    this.name = raw.name;
    this.ifindex = raw.ifindex;
    this.mac = [...raw.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    this.mtu = raw.mtu;
    this.minMtu = raw.minMtu;
    this.maxMtu = raw.maxMtu;
  }

  stats(): RawStats {
    return this.raw.stats();
  }

  /**
   * The data plane's say on the link: carrier on or off, through the netdev's
   * carrier attribute. The kernel accepts it only while the interface is up,
   * and this process must see the interface's network namespace in /sys.
   */
  setCarrier(on: boolean): void {
    try {
      writeFileSync(`/sys/class/net/${this.name}/carrier`, on ? '1' : '0');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EINVAL') throw new KniError(`${this.name}: carrier can only be set while the interface is up`, e.errno ? -e.errno : 22, 'write');
      throw err;
    }
  }

  /**
   * The interface's KNI socket (the vhost-net backend) as a new descriptor of
   * this process, through /dev/kni rather than sysfs: only the file that
   * created or attached the interface may, and no other process sees a
   * descriptor appear. Close-on-exec unless `inheritable`: a launcher hands
   * it to qemu through a stdio slot (dup2 clears the flag in the child).
   * EBUSY while the interface has a socket.
   */
  openSocket(options: { inheritable?: boolean } = {}): number {
    return wrap(() => this.raw.openSocket(!options.inheritable));
  }

  /** Removes the interface. Stop its data plane first. */
  release(): void {
    wrap(() => this.raw.release());
    this.owner.forget(this);
  }

  /** Called by the data plane on the JS thread. */
  handle(r: RawRequest): void {
    const type = REQUEST_TYPES[r.type as keyof typeof REQUEST_TYPES];
    // A type this version does not know is a newer kernel's: nothing to tell.
    if (type === undefined) return;
    const n: ControlNotification = { type, value: r.value, mac: [...r.mac].map((b) => b.toString(16).padStart(2, '0')).join(':') };
    this.emit('notify', n);
  }
}

/** The /dev/kni control descriptor of this process: interfaces live as long as it is open. */
export class Kni {
  private readonly raw: InstanceType<RawBinding['Control']>;
  private readonly interfaces = new Map<number, KniInterface>();

  constructor(devicePath?: string) {
    this.raw = wrap(() => new raw.Control(devicePath));
  }

  create(options: InterfaceOptions): KniInterface {
    const o = InterfaceOptionsSchema.parse(options);
    const iface = new KniInterface(
      wrap(() =>
        this.raw.create({
          ...o,
          ...o.parent,
          mac: o.mac ? Buffer.from(o.mac.split(':').map((h) => parseInt(h, 16))) : undefined,
        }),
      ),
      this,
    );
    this.interfaces.set(iface.id, iface);
    return iface;
  }

  get(id: number): KniInterface | undefined {
    return this.interfaces.get(id);
  }

  /** @internal */
  forget(iface: KniInterface): void {
    this.interfaces.delete(iface.id);
  }

  /** Releases every interface and closes /dev/kni. Idempotent. */
  close(): void {
    for (const i of [...this.interfaces.values()]) {
      try {
        i.release();
      } catch {
        // still served by a data plane: closing the descriptor removes it anyway
      }
    }
    this.interfaces.clear();
    this.raw.close();
  }
}

export const DataPlaneOptionsSchema = z.object({
  /** How long the thread sleeps when nothing moved (the kernel's FIFOs cannot be polled). */
  idleUs: z.number().int().min(1).max(100_000).default(200),
  /** CPU to pin the thread to, or -1. */
  cpu: z.number().int().min(-1).max(4095).default(-1),
});

/** A thread forwarding between KNI interfaces and their ports; several links may share one. */
export class DataPlane {
  private handle: { stop(): void } | undefined;

  constructor(links: { iface: KniInterface; port: z.input<typeof PortSchema> }[], options: z.input<typeof DataPlaneOptionsSchema> = {}) {
    const o = DataPlaneOptionsSchema.parse(options);
    const parsed = links.map((l) => ({ iface: l.iface, port: PortSchema.parse(l.port) }));
    const byId = new Map(parsed.map((l) => [l.iface.id, l.iface]));
    this.handle = wrap(
      () =>
        new raw.DataPlane(
          parsed.map((l) => ({ iface: l.iface.raw, port: l.port })),
          (id, r) => byId.get(id)?.handle(r),
          { idleUs: o.idleUs, cpu: o.cpu },
        ),
    );
  }

  /** Stops and joins the thread. Idempotent. */
  stop(): void {
    this.handle?.stop();
    this.handle = undefined;
  }
}

// Port relay ------------------------------------------------------------------

export interface RelayDirectionStats {
  /** Frames read from the source port and sent on the other, and their bytes. */
  packets: number;
  bytes: number;
  /** The destination port refused the frame. */
  dropSend: number;
  /** A frame longer than the relay's 64 KiB buffer. */
  dropTooBig: number;
  /** The source port failed a read. */
  recvErrors: number;
}
export interface RelayStats {
  aToB: RelayDirectionStats;
  bToA: RelayDirectionStats;
}

// The relay's part of the raw binding (declaration merging keeps it in one block).
interface RawBinding {
  PortRelay: new (a: Port, b: Port, opts: { idleUs: number; cpu: number }) => { stats(): RelayStats; stop(): void };
}

/**
 * Two ports joined by a thread, with no KNI interface between them: every
 * frame read from one is sent on the other, both ways. The benchmarks'
 * baseline (a generator or a sink joined to a TAP device).
 */
export class PortRelay {
  private readonly handle: InstanceType<RawBinding['PortRelay']>;
  private stopped = false;

  constructor(a: z.input<typeof PortSchema>, b: z.input<typeof PortSchema>, options: z.input<typeof DataPlaneOptionsSchema> = {}) {
    const o = DataPlaneOptionsSchema.parse(options);
    const pa = PortSchema.parse(a);
    const pb = PortSchema.parse(b);
    this.handle = wrap(() => new raw.PortRelay(pa, pb, { idleUs: o.idleUs, cpu: o.cpu }));
  }

  /** Live counters; still readable after stop(). */
  stats(): RelayStats {
    return this.handle.stats();
  }

  /** Stops and joins the thread and closes both ports. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.handle.stop();
  }
}
