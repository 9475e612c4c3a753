// The guest image: an initramfs for a small test guest that boots the
// appliance kernel (qemu/kernels.ts, unpacked for a direct ELF boot), brings
// up its virtio NICs from the kernel command line and runs iperf3 — what the
// nested-guest tests and the benchmarks boot. Built in memory, cached by
// content, and left uncompressed: under nested TCG, unpacking a gzip archive
// costs the guest several seconds of every boot, reading 10 MB costs nothing.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { cpioArchive, type CpioEntry } from './cpio.js';
import { busyboxLinks, moduleBytes, moduleLoadOrder } from './initramfs.js';
import type { Kernel } from './kernels.js';
import { projectRoot } from './paths.js';
import { IfnameSchema } from './vm-spec.js';

/** virtio-net over PCI; af_packet is built into Debian's kernels. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net'] as const;

const BUSYBOX = '/bin/busybox';
const IPERF3 = '/usr/bin/iperf3';
const INIT = join(projectRoot, 'qemu', 'guest', 'init.sh');

/** Just enough /etc for iperf3 and busybox: names for root and localhost. */
const ETC: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
  'etc/group': 'root:x:0:\n',
  'etc/hosts': '127.0.0.1 localhost\n::1 localhost\n',
  'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
};

/**
 * The shared libraries a dynamically linked program loads, the dynamic loader
 * included, as `ldd` resolves them on this system.
 */
export function sharedLibraries(program: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`ldd ${program} failed: ${(e.stdout || e.stderr || e.message).trim()}`);
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    if (/not found/.test(line)) throw new Error(`${program} needs a library this system lacks: ${line.trim()}`);
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  if (!libs.some((l) => basename(l).startsWith('ld-linux'))) throw new Error(`ldd ${program} named no dynamic loader`);
  return libs;
}

/** Where the compressed kernel sits in a bzImage, per the x86 boot protocol (2.08+). */
function bzImagePayload(image: Buffer, path: string): { format: 'xz' | 'zstd' | 'gzip'; data: Buffer; size: number } {
  if (image.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error(`${path} is not a bzImage (no HdrS header)`);
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const payload = image.subarray(start, start + image.readUInt32LE(0x24c));
  // The build appends the uncompressed size, 4 bytes little-endian, to the compressed stream.
  const data = payload.subarray(0, payload.length - 4);
  const size = payload.readUInt32LE(payload.length - 4);
  const magic = (hex: string) => data.subarray(0, hex.length / 2).equals(Buffer.from(hex, 'hex'));
  if (magic('fd377a585a00')) return { format: 'xz', data, size };
  if (magic('28b52ffd')) return { format: 'zstd', data, size };
  if (magic('1f8b')) return { format: 'gzip', data, size };
  throw new Error(`${path}: the kernel payload is compressed in a format kniv does not unpack`);
}

/**
 * The appliance kernel without its self-decompressing wrapper: an ELF that
 * qemu boots directly through its PVH entry point (Debian builds CONFIG_PVH).
 * Under nested TCG, 6.1's xz decompression alone takes about a minute; this
 * takes it out of every boot. Cached by the content of vmlinuz.
 */
export function guestKernel(kernel: Kernel): string {
  const image = readFileSync(kernel.vmlinuz);
  const key = createHash('sha256').update(image).digest('hex').slice(0, 16);
  const dir = join(projectRoot, 'build', 'guest');
  const out = join(dir, `vmlinux-${kernel.release}-${key}`);
  try {
    statSync(out);
    return out;
  } catch {
    // not cached yet
  }
  const { format, data, size } = bzImagePayload(image, kernel.vmlinuz);
  const opts = { input: data, maxBuffer: 512 << 20 };
  const elf =
    format === 'gzip' ? gunzipSync(data) : execFileSync(format === 'xz' ? 'xz' : 'zstd', format === 'xz' ? ['-dc', '--single-stream'] : ['-dcq'], opts);
  if (elf.length !== size || !elf.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1'))) {
    throw new Error(`${kernel.vmlinuz}: unpacking its ${format} payload gave ${elf.length} bytes, not the ${size}-byte ELF it announces`);
  }
  mkdirSync(dir, { recursive: true });
  for (const old of readdirSync(dir)) {
    if (old.startsWith(`vmlinux-${kernel.release}-`)) rmSync(join(dir, old), { force: true });
  }
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, elf);
  renameSync(tmp, out);
  return out;
}

export interface GuestImage {
  release: string;
  /** The uncompressed kernel (guestKernel()). */
  kernel: string;
  initrd: string;
}

/** Path of the guest initramfs for this kernel, building it if no cached one matches. */
export function guestImage(kernel: Kernel): GuestImage {
  const modules = moduleLoadOrder(kernel, GUEST_MODULES);
  const libs = sharedLibraries(IPERF3);
  const files = new Map<string, Buffer>([
    ['init', readFileSync(INIT)],
    ['bin/busybox', readFileSync(BUSYBOX)],
    [IPERF3.slice(1), readFileSync(IPERF3)],
    ...libs.map((l): [string, Buffer] => [l.slice(1), readFileSync(l)]),
    ...Object.entries(ETC).map(([p, text]): [string, Buffer] => [p, Buffer.from(text)]),
  ]);
  const moduleFiles = modules.map((m) => ({ source: m, raw: readFileSync(m) }));

  const hash = createHash('sha256');
  for (const [p, data] of files) hash.update(`${p}\0${data.length}\0`).update(data);
  for (const m of moduleFiles) hash.update(`${basename(m.source)}\0${m.raw.length}\0`).update(m.raw);
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(projectRoot, 'build', 'guest');
  const initrd = join(dir, `guest-${kernel.release}-${key}.cpio`);
  const image = { release: kernel.release, kernel: guestKernel(kernel), initrd };
  try {
    statSync(initrd);
    return image;
  } catch {
    // not cached yet
  }

  const dirs = new Set(['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'run', 'root', 'lib/kniv/modules']);
  for (const p of files.keys()) for (let d = dirname(p); d !== '.'; d = dirname(d)) dirs.add(d);
  for (const d of [...dirs]) for (let p = dirname(d); p !== '.'; p = dirname(p)) dirs.add(p);
  const entries: CpioEntry[] = [
    ...[...dirs].sort().map((path): CpioEntry => ({ type: 'dir', path, mode: path === 'tmp' ? 0o1777 : 0o755 })),
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    ...busyboxLinks(BUSYBOX),
    ...[...files].map(([path, data]): CpioEntry => ({
      type: 'file',
      path,
      data,
      mode: path.startsWith('etc/') ? 0o644 : 0o755,
    })),
    ...moduleFiles.map(
      (m, i): CpioEntry => ({
        type: 'file',
        path: `lib/kniv/modules/${String(i).padStart(2, '0')}-${basename(m.source).replace(/\.xz$/, '')}`,
        data: moduleBytes(m.source),
      }),
    ),
  ];

  mkdirSync(dir, { recursive: true });
  for (const old of readdirSync(dir)) {
    if (old.startsWith(`guest-${kernel.release}-`)) rmSync(join(dir, old), { force: true });
  }
  // Concurrent builds of the same image: write aside, then rename.
  const tmp = `${initrd}.${process.pid}.tmp`;
  writeFileSync(tmp, cpioArchive(entries));
  renameSync(tmp, initrd);
  return image;
}

/** What the guest's /init does, encoded on the kernel command line. */
export const GuestConfigSchema = z.strictObject({
  net: z
    .array(z.strictObject({ ifname: IfnameSchema, address: z.cidrv4('an address looks like 10.1.0.2/24') }))
    .max(8)
    .default([]),
  gateway: z.ipv4().optional(),
  /** Start `iperf3 -s -D` (port 5201) before reporting ready. */
  iperfServer: z.boolean().default(false),
  /** A shell script run once ready; its status is reported as "kniv-guest: exit N". */
  run: z.string().optional(),
  /** Power off after `run` (or right after ready when there is nothing to run). */
  poweroff: z.boolean().default(false),
});
export type GuestConfig = z.input<typeof GuestConfigSchema>;

/** The console markers /init prints. */
export const GUEST_READY = /^kniv-guest: ready uptime=([\d.]+)/;
export const GUEST_EXIT = /^kniv-guest: exit (\d+)/;
export const GUEST_ERROR = /^kniv-guest: error: (.*)/;

export function guestCmdline(config: GuestConfig): string {
  const c = GuestConfigSchema.parse(config);
  // loglevel=5, not quiet: warnings (KERN_WARNING, level 4) reach the console,
  // where a WARN_ON splat fails the run; quiet would show errors and worse only.
  // panic=-1: a guest kernel that panics reboots at once instead of hanging.
  // Under nested TCG with -cpu max the emulator corrupted 6.12 guests' EFLAGS
  // in early boot (docs/guests.md, "Nested TCG and the CPU model"); the CPU
  // model removes the trigger, qemu/guest-boot.ts judges what remains.
  // cryptomgr.notests: the crypto self-tests (hmac, sha256, the KDF108 check
  // built on them) are about 10 s of a nested TCG boot, and this guest uses
  // no kernel crypto.
  const words = ['console=ttyS0', 'loglevel=5', 'mitigations=off', 'panic=-1', 'cryptomgr.notests'];
  if (c.net.length > 0) words.push(`kniv.net=${c.net.map((n) => `${n.ifname}:${n.address}`).join(',')}`);
  if (c.gateway !== undefined) words.push(`kniv.gw=${c.gateway}`);
  if (c.iperfServer) words.push('kniv.iperf=1');
  if (c.run !== undefined) words.push(`kniv.run=${Buffer.from(c.run, 'utf8').toString('base64')}`);
  if (c.poweroff) words.push('kniv.poweroff=1');
  const cmdline = words.join(' ');
  if (cmdline.length > 2047) throw new Error(`the guest command line is ${cmdline.length} bytes; x86 allows 2047 (shorten "run")`);
  return cmdline;
}

/** A kernel boot for VmSpec.boot: the appliance kernel, the guest image, the orders. */
export function guestBoot(kernel: Kernel, config: GuestConfig) {
  const image = guestImage(kernel);
  return { kind: 'kernel' as const, kernel: image.kernel, initrd: image.initrd, cmdline: guestCmdline(config) };
}
