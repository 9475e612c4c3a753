// The guest image and kernel as built on this machine.
import test from 'ava';
import { readFileSync, statSync } from 'node:fs';
import { execa } from 'execa';
import { GUEST_MODULES, guestImage, guestKernel, sharedLibraries } from '../../qemu/guest-image.js';
import { kernel } from '../../qemu/kernels.js';

for (const label of ['6.1', '6.12'] as const) {
  test(`${label}: the initramfs holds busybox and its applet links, iperf3 with its libraries and loader, the virtio modules and /init`, async (t) => {
    const image = guestImage(kernel(label));
    t.regex(image.initrd, /\.cpio$/, 'stored uncompressed');
    const { stdout } = await execa('cpio', ['-t', '--quiet'], { input: readFileSync(image.initrd) });
    const files = stdout.split('\n');
    for (const f of ['init', 'bin/busybox', 'bin/sh', 'bin/insmod', 'bin/ip', 'usr/bin/iperf3', 'etc/hosts', 'etc/passwd', 'dev/console', 'tmp']) t.true(files.includes(f), f);
    for (const lib of sharedLibraries('/usr/bin/iperf3')) t.true(files.includes(lib.slice(1)), lib);
    t.true(files.some((f) => /^lib64\/ld-linux-x86-64\.so\.2$/.test(f)), 'the dynamic loader');
    t.true(files.some((f) => /^lib\/kniv\/modules\/\d\d-virtio_net\.ko$/.test(f)), 'virtio_net, decompressed');
    t.false(files.some((f) => f.endsWith('.xz')));
    t.is(GUEST_MODULES.length, 2);
    t.log(`${image.initrd}: ${(statSync(image.initrd).size / 1e6).toFixed(1)} MB`);
  });

  test(`${label}: the kernel is unpacked to an ELF once, then taken from the cache`, (t) => {
    const k = kernel(label);
    const path = guestKernel(k);
    const elf = readFileSync(path);
    t.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    t.true(elf.length > statSync(k.vmlinuz).size);
    // qemu boots it through the PVH entry point, announced by a Xen ELF note.
    t.true(elf.includes(Buffer.from('Xen\0')), 'a Xen ELF note (PVH entry)');
    const mtime = statSync(path).mtimeMs;
    t.is(guestKernel(k), path);
    t.is(statSync(path).mtimeMs, mtime, 'not rebuilt');
    t.is(guestImage(k).kernel, path);
  });
}

test('sharedLibraries names the loader and refuses a program that is not dynamic', async (t) => {
  const libs = sharedLibraries('/usr/bin/iperf3');
  t.true(libs.some((l) => l.endsWith('/libc.so.6')));
  t.true(libs.some((l) => /ld-linux-x86-64\.so\.2$/.test(l)));
  t.throws(() => sharedLibraries('/bin/busybox'), { message: 'ldd /bin/busybox failed: not a dynamic executable' });
});
