// A guest's qemu command line: a pure function from a checked spec and the
// launcher's runtime choices to argv. No shell ever sees it; values that land
// inside qemu's key=value option syntax have their commas doubled, which is
// how qemu escapes them.
import { nicMac, type VmSpec } from './vm-spec.js';

export type ConsoleTarget =
  /** qemu listens; whoever connects reads the serial console (output is dropped while nobody is connected). */
  | { kind: 'socket'; path: string }
  /** qemu appends the serial console to a file itself. */
  | { kind: 'file'; path: string }
  | { kind: 'none' };

export interface VmRuntime {
  /** Whether KVM works here (accel.ts kvmUsable()); decides accel 'auto'. */
  kvmUsable: boolean;
  /** The -cpu model under TCG (accel.ts tcgCpuModel()); KVM always gets `host`. */
  tcgCpu: string;
  /** QMP listens on this unix socket. */
  qmpSocket: string;
  console: ConsoleTarget;
  pidfile: string;
  /** For each NIC, by index: the descriptor number the fd backend has in the qemu child. */
  nicFds: readonly (number | undefined)[];
  /** Start with the CPUs stopped (-S) until QMP `cont`, so nothing is missed on the console. */
  paused: boolean;
}

/** qemu's QemuOpts escaping: a comma inside a value is written twice. */
export function optValue(s: string): string {
  return s.replaceAll(',', ',,');
}

export function usesKvm(spec: Pick<VmSpec, 'accel'>, kvmUsable: boolean): boolean {
  return spec.accel === 'kvm' || (spec.accel === 'auto' && kvmUsable);
}

export function nicDeviceId(index: number): string {
  return `nic${index}`;
}

/** The QOM path of a NIC's virtio backend, as x-query-virtio-status wants it. */
export function nicVirtioPath(index: number): string {
  return `/machine/peripheral/${nicDeviceId(index)}/virtio-backend`;
}

export function vmArgv(spec: VmSpec, rt: VmRuntime): string[] {
  const argv = [
    '-name', spec.name,
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-machine', 'q35',
    ...(usesKvm(spec, rt.kvmUsable) ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', rt.tcgCpu]),
    '-smp', String(spec.vcpus),
    '-m', `${spec.memoryMiB}M`,
    '-pidfile', rt.pidfile,
    '-chardev', `socket,id=qmp,path=${optValue(rt.qmpSocket)},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
  ];
  if (rt.paused) argv.push('-S');

  switch (rt.console.kind) {
    case 'socket':
      argv.push('-chardev', `socket,id=console,path=${optValue(rt.console.path)},server=on,wait=off`, '-serial', 'chardev:console');
      break;
    case 'file':
      argv.push('-chardev', `file,id=console,path=${optValue(rt.console.path)},append=on`, '-serial', 'chardev:console');
      break;
    case 'none':
      break;
  }

  const boot = spec.boot;
  if (boot.kind === 'kernel') {
    argv.push('-kernel', boot.kernel);
    if (boot.initrd !== undefined) argv.push('-initrd', boot.initrd);
    argv.push('-append', boot.cmdline);
  } else {
    argv.push(
      '-drive', `if=none,id=disk0,file=${optValue(boot.image)},format=${boot.format}`,
      '-device', 'virtio-blk-pci,drive=disk0,bootindex=0',
    );
  }

  spec.nics.forEach((nic, i) => {
    let backend: string;
    if (nic.backend.kind === 'fd') {
      const fd = rt.nicFds[i];
      if (fd === undefined) throw new Error(`nics[${i}] uses an fd backend but the runtime gives it no child fd`);
      backend = `fd=${fd}`;
    } else {
      backend = `ifname=${nic.backend.ifname},script=no,downscript=no`;
      if (nic.backend.vnetHdr !== undefined) backend += `,vnet_hdr=${nic.backend.vnetHdr ? 'on' : 'off'}`;
    }
    argv.push(
      '-netdev', `tap,id=net${i},${backend},vhost=${nic.vhost ? 'on' : 'off'}`,
      '-device', `${nic.model},id=${nicDeviceId(i)},netdev=net${i},mac=${nicMac(spec.name, i, nic)}`,
    );
  });
  return argv;
}
