// The appliance initramfs: busybox, the kernel modules the VM needs (in
// dependency order), kni.ko and /init. Built in memory, cached by content.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cpioArchive, type CpioEntry } from './cpio.js';
import type { Kernel } from './kernels.js';
import { projectRoot } from './paths.js';

/** Modules the appliance needs: devices, the 9p root, overlay, and what kniv's tests use. */
export const APPLIANCE_MODULES = [
  'virtio_pci', 'virtio_net', 'virtio_console', 'qemu_fw_cfg',
  '9pnet_virtio', '9p', 'overlay',
  'tun', 'vhost_net', 'veth', 'bridge',
] as const;

const BUSYBOX = '/bin/busybox';
const INIT = join(projectRoot, 'qemu', 'appliance', 'init.sh');

/** Module files for `names` and their dependencies, dependencies first, each once. */
export function moduleLoadOrder(k: Kernel, names: readonly string[]): string[] {
  const out = execFileSync(
    'modprobe',
    ['-d', k.root, '-S', k.release, '-a', '--show-depends', ...names],
    { encoding: 'utf8' },
  );
  const seen = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /^insmod (\S+)/.exec(line);
    if (m?.[1] && !seen.has(m[1])) seen.add(m[1]);
  }
  return [...seen];
}

/**
 * A symlink to busybox for each of its applets, made when the archive is
 * built rather than by `busybox --install` at boot: under nested TCG every
 * process /init spares is worth a fraction of a second.
 */
export function busyboxLinks(busybox = BUSYBOX): CpioEntry[] {
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
  return applets.sort().map((a): CpioEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' }));
}

export function moduleBytes(path: string): Buffer {
  // busybox insmod passes the image to init_module as is: decompress here.
  if (path.endsWith('.xz')) return execFileSync('xz', ['-dc', path], { maxBuffer: 256 << 20 });
  return readFileSync(path);
}

export interface InitramfsInput {
  kernel: Kernel;
  kniModule: string | undefined;
}

/** Path of an initramfs for these inputs, building it if no cached one matches. */
export function applianceInitramfs({ kernel, kniModule }: InitramfsInput): string {
  const modules = moduleLoadOrder(kernel, APPLIANCE_MODULES);
  const init = readFileSync(INIT);
  const busybox = readFileSync(BUSYBOX);
  const kni = kniModule ? readFileSync(kniModule) : undefined;

  const hash = createHash('sha256');
  hash.update(init).update(busybox).update(kni ?? '');
  for (const m of modules) {
    const st = statSync(m);
    hash.update(`${m}\0${st.size}\0${st.mtimeMs}\0`);
  }
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(projectRoot, 'build', 'vm');
  const file = join(dir, `initramfs-${kernel.release}-${key}.cpio`);
  try {
    statSync(file);
    return file;
  } catch {
    // not cached yet
  }

  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'lib', 'lib/kniv', 'lib/kniv/modules', 'proc', 'sys', 'run', 'mnt', 'newroot'].map(
      (path): CpioEntry => ({ type: 'dir', path }),
    ),
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'file', path: 'init', data: init, mode: 0o755 },
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    ...busyboxLinks(),
    ...modules.map(
      (m, i): CpioEntry => ({
        type: 'file',
        path: `lib/kniv/modules/${String(i).padStart(2, '0')}-${basename(m).replace(/\.xz$/, '')}`,
        data: moduleBytes(m),
      }),
    ),
  ];
  if (kni) entries.push({ type: 'file', path: 'lib/kniv/kni.ko', data: kni });

  mkdirSync(dir, { recursive: true });
  // Older archives of this release go, but not one built in the last hour:
  // another process (a parallel test file with another kni.ko) may be about
  // to boot from it, and qemu then failed to open its initrd.
  const stale = Date.now() - 3600_000;
  for (const old of readdirSync(dir)) {
    if (!old.startsWith(`initramfs-${kernel.release}-`)) continue;
    try {
      if (statSync(join(dir, old)).mtimeMs < stale) rmSync(join(dir, old), { force: true });
    } catch {
      // removed meanwhile by another process
    }
  }
  // Concurrent runs may build the same archive: write aside, then rename.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, cpioArchive(entries));
  renameSync(tmp, file);
  return file;
}
