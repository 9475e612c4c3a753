// What a kniv guest is: the single source of truth for the CLI, the launcher
// and the REST service. Everything qemu will see is checked here, with a
// message that names the field; vm-argv.ts only translates.
import { createHash } from 'node:crypto';
import { z } from 'zod';

const absolutePath = (what: string) =>
  z
    .string()
    .startsWith('/', `${what} must be an absolute path`)
    .refine((s) => !s.includes('\0'), `${what} must not contain a NUL byte`);

/** Linux interface names: at most 15 bytes, no '/', ':', whitespace or comma. */
export const IfnameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$/, 'an interface name is 1 to 15 letters, digits, "_", "-" or "." (not first)');

export const MacSchema = z
  .string()
  .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, 'a MAC address looks like 52:54:00:12:34:56')
  .refine((s) => (parseInt(s.slice(0, 2), 16) & 1) === 0, 'a NIC needs a unicast MAC address (the first octet must be even)')
  .transform((s) => s.toLowerCase());

export const NicBackendSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('fd'),
    /** A descriptor open in the launching process (a KNI socket, a TAP); the child gets its own copy. */
    fd: z.number().int().min(3, 'fd 0, 1 and 2 are stdin, stdout and stderr, not a network backend').max(1 << 20),
  }),
  z.strictObject({
    kind: z.literal('tap'),
    /** qemu opens /dev/net/tun and attaches to this TAP device itself. */
    ifname: IfnameSchema,
    /**
     * Whether qemu asks the TAP for virtio-net headers (IFF_VNET_HDR), which is
     * what lets the guest keep its checksum and TSO offloads. Unset: qemu's
     * default (on when the TAP supports it). false is the baseline without them.
     */
    vnetHdr: z.boolean().optional(),
  }),
], { error: 'a NIC backend is {kind: "fd", fd} or {kind: "tap", ifname}' });

export const NicSchema = z.strictObject({
  /** Default: a stable locally administered address derived from the VM name and the NIC index. */
  mac: MacSchema.optional(),
  vhost: z.boolean().default(true),
  model: z.enum(['virtio-net-pci']).default('virtio-net-pci'),
  backend: NicBackendSchema,
});
export type Nic = z.output<typeof NicSchema>;

export const KernelBootSchema = z.strictObject({
  kind: z.literal('kernel'),
  kernel: absolutePath('kernel'),
  initrd: absolutePath('initrd').optional(),
  // x86's COMMAND_LINE_SIZE is 2048 including the terminating NUL.
  cmdline: z
    .string()
    .max(2047, 'the kernel command line is at most 2047 bytes on x86')
    .refine((s) => !/[\0\n]/.test(s), 'the kernel command line must not contain NUL or newline')
    .default(''),
});

export const DiskBootSchema = z.strictObject({
  kind: z.literal('disk'),
  image: absolutePath('image'),
  // Never probed: a raw image that looks like qcow2 must not be opened as one.
  format: z.enum(['qcow2', 'raw']),
});

export const BootSchema = z.discriminatedUnion('kind', [KernelBootSchema, DiskBootSchema], {
  error: 'boot is {kind: "kernel", kernel, initrd?, cmdline?} or {kind: "disk", image, format}',
});

export const VmSpecSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'a VM name is 1 to 63 letters, digits, "_" or "-", starting with a letter or digit'),
    vcpus: z.number().int().min(1, 'at least 1 vCPU').max(16, 'at most 16 vCPUs').default(1),
    memoryMiB: z.number().int().min(64, 'at least 64 MiB of memory').max(65536, 'at most 65536 MiB of memory').default(512),
    boot: BootSchema,
    nics: z.array(NicSchema).max(8, 'at most 8 NICs').default([]),
    accel: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
  })
  .superRefine((spec, ctx) => {
    const macs = new Map<string, number>();
    const taps = new Map<string, number>();
    const fds = new Map<number, number>();
    spec.nics.forEach((nic, i) => {
      const mac = nicMac(spec.name, i, nic);
      const dupMac = macs.get(mac);
      if (dupMac !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['nics', i, 'mac'], message: `MAC ${mac} is already used by nics[${dupMac}]` });
      }
      macs.set(mac, i);
      if (nic.backend.kind === 'tap') {
        const dup = taps.get(nic.backend.ifname);
        if (dup !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['nics', i, 'backend', 'ifname'], message: `TAP ${nic.backend.ifname} is already used by nics[${dup}]` });
        }
        taps.set(nic.backend.ifname, i);
      } else {
        const dup = fds.get(nic.backend.fd);
        if (dup !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['nics', i, 'backend', 'fd'], message: `fd ${nic.backend.fd} is already used by nics[${dup}]` });
        }
        fds.set(nic.backend.fd, i);
      }
    });
  });
export type VmSpec = z.output<typeof VmSpecSchema>;
export type VmSpecInput = z.input<typeof VmSpecSchema>;

/**
 * A stable, locally administered unicast MAC for a VM's NIC: the same name and
 * index always give the same address, so a restarted guest keeps its ARP
 * entries and DHCP leases.
 */
export function defaultMac(vmName: string, index: number): string {
  const h = createHash('sha256').update(`kniv-nic\0${vmName}\0${index}`).digest();
  h[0] = (h[0]! & 0xfc) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The MAC a NIC gets: its own, or the default for its position. */
export function nicMac(vmName: string, index: number, nic: Pick<Nic, 'mac'>): string {
  return nic.mac ?? defaultMac(vmName, index);
}
