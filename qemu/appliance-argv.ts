// The appliance VM's qemu command line: a pure function from a spec to argv.
import { z } from 'zod';

export const PortForwardSchema = z.object({
  hostAddress: z.ipv4().default('127.0.0.1'),
  hostPort: z.number().int().min(1).max(65535),
  guestPort: z.number().int().min(1).max(65535),
});
export type PortForward = z.infer<typeof PortForwardSchema>;

/**
 * File descriptors of the qemu child that carry the VM's output channels.
 * Node hands children socketpairs, which qemu's socket chardev takes as
 * connected sockets (a path like /proc/self/fd/N cannot reopen a socket).
 */
export const APPLIANCE_FDS = { console: 3, stdout: 4, stderr: 5, status: 6 } as const;

export interface ApplianceArgvSpec {
  /** The kernel to boot: an ELF with a PVH entry (guestKernel()) or a bzImage. */
  kernel: string;
  initrd: string;
  memoryMiB: number;
  cpus: number;
  kvm: boolean;
  /** The -cpu model under TCG (accel.ts tcgCpuModel()); KVM always gets `host`. */
  tcgCpu: string;
  kernelArgs: readonly string[];
  /** fw_cfg items (name below opt/kniv/ → content); base64 keeps commas out. */
  fwcfg: Readonly<Record<string, string>>;
  forwards: readonly PortForward[];
  /** Host directories shared read-write (9p), each mounted by init at KNIV_SHARE_<tag>. */
  shares?: readonly { tag: string; path: string }[];
}

export function applianceArgv(spec: ApplianceArgvSpec): string[] {
  const argv = [
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-no-reboot',
    '-machine', 'q35',
    ...(spec.kvm ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', spec.tcgCpu]),
    '-smp', String(spec.cpus),
    '-m', `${spec.memoryMiB}M`,
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', spec.kernelArgs.join(' '),
    // Kernel console on the first serial port.
    '-chardev', `socket,id=console,fd=${APPLIANCE_FDS.console}`,
    '-serial', 'chardev:console',
    // hvc0/hvc1/hvc2 inside: the command's stdout, its stderr, its exit status.
    '-device', 'virtio-serial-pci,id=vser',
    '-chardev', `socket,id=stdout,fd=${APPLIANCE_FDS.stdout}`,
    '-device', 'virtconsole,chardev=stdout',
    '-chardev', `socket,id=stderr,fd=${APPLIANCE_FDS.stderr}`,
    '-device', 'virtconsole,chardev=stderr',
    '-chardev', `socket,id=status,fd=${APPLIANCE_FDS.status}`,
    '-device', 'virtconsole,chardev=status',
    // The host's root, read-only; the guest puts a tmpfs overlay over it.
    '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
  ];
  for (const share of spec.shares ?? []) {
    if (!/^[a-z][a-z0-9_]{0,30}$/.test(share.tag)) throw new Error(`bad share tag ${share.tag}`);
    // qemu splits its options at commas; a path with one cannot be passed.
    if (!share.path.startsWith('/') || share.path.includes(',')) throw new Error(`a shared path must be absolute and without commas: ${share.path}`);
    argv.push('-virtfs', `local,path=${share.path},mount_tag=${share.tag},security_model=none,multidevs=remap`);
  }
  for (const [name, value] of Object.entries(spec.fwcfg)) {
    if (!/^[a-z0-9_-]+$/.test(name)) throw new Error(`bad fw_cfg name ${name}`);
    if (!/^[A-Za-z0-9+/=]*$/.test(value)) throw new Error(`fw_cfg ${name} must be base64`);
    argv.push('-fw_cfg', `name=opt/kniv/${name},string=${value}`);
  }
  if (spec.forwards.length > 0) {
    // restrict=on: the guest reaches nothing outside; only the forwards get in.
    const fwd = spec.forwards
      .map((f) => `hostfwd=tcp:${f.hostAddress}:${f.hostPort}-:${f.guestPort}`)
      .join(',');
    argv.push('-netdev', `user,id=net0,restrict=on,${fwd}`, '-device', 'virtio-net-pci,netdev=net0');
  }
  return argv;
}
