// VmSpecSchema: what a guest may be, and the messages bad input gets.
import test from 'ava';
import { z } from 'zod';
import { defaultMac, nicMac, VmSpecSchema, type VmSpecInput } from '../../qemu/vm-spec.js';

const minimal: VmSpecInput = { name: 'g1', boot: { kind: 'kernel', kernel: '/k/vmlinuz' } };

/** Every issue as "path: message", for exact comparisons. */
function issues(input: unknown): string[] {
  const r = VmSpecSchema.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('defaults: 1 vCPU, 512 MiB, no NICs, accel auto, empty command line', (t) => {
  t.deepEqual(VmSpecSchema.parse(minimal), {
    name: 'g1',
    vcpus: 1,
    memoryMiB: 512,
    boot: { kind: 'kernel', kernel: '/k/vmlinuz', cmdline: '' },
    nics: [],
    accel: 'auto',
  });
});

test('a NIC defaults to vhost on and virtio-net-pci; its MAC is lower-cased', (t) => {
  const spec = VmSpecSchema.parse({ ...minimal, nics: [{ mac: '52:54:00:AB:CD:EF', backend: { kind: 'fd', fd: 7 } }] });
  t.deepEqual(spec.nics, [{ mac: '52:54:00:ab:cd:ef', vhost: true, model: 'virtio-net-pci', backend: { kind: 'fd', fd: 7 } }]);
});

test('a disk boot needs an explicit format', (t) => {
  t.deepEqual(issues({ ...minimal, boot: { kind: 'disk', image: '/d.img' } }), ['boot.format: Invalid option: expected one of "qcow2"|"raw"']);
  t.notThrows(() => VmSpecSchema.parse({ ...minimal, boot: { kind: 'disk', image: '/d.qcow2', format: 'qcow2' } }));
});

test('names, sizes and paths are checked with precise messages', (t) => {
  t.deepEqual(issues({ ...minimal, name: 'a b' }), ['name: a VM name is 1 to 63 letters, digits, "_" or "-", starting with a letter or digit']);
  t.deepEqual(issues({ ...minimal, name: '-x' }), ['name: a VM name is 1 to 63 letters, digits, "_" or "-", starting with a letter or digit']);
  t.deepEqual(issues({ ...minimal, vcpus: 0 }), ['vcpus: at least 1 vCPU']);
  t.deepEqual(issues({ ...minimal, vcpus: 17 }), ['vcpus: at most 16 vCPUs']);
  t.deepEqual(issues({ ...minimal, vcpus: 1.5 }), ['vcpus: Invalid input: expected int, received number']);
  t.deepEqual(issues({ ...minimal, memoryMiB: 63 }), ['memoryMiB: at least 64 MiB of memory']);
  t.deepEqual(issues({ ...minimal, memoryMiB: 65537 }), ['memoryMiB: at most 65536 MiB of memory']);
  t.deepEqual(issues({ ...minimal, boot: { kind: 'kernel', kernel: 'vmlinuz' } }), ['boot.kernel: kernel must be an absolute path']);
  t.deepEqual(issues({ ...minimal, boot: { kind: 'kernel', kernel: '/k', initrd: 'i.cpio' } }), ['boot.initrd: initrd must be an absolute path']);
  t.deepEqual(issues({ ...minimal, boot: { kind: 'disk', image: '/a\0b', format: 'raw' } }), ['boot.image: image must not contain a NUL byte']);
  t.deepEqual(issues({ ...minimal, boot: { kind: 'kernel', kernel: '/k', cmdline: 'a\nb' } }), ['boot.cmdline: the kernel command line must not contain NUL or newline']);
  t.deepEqual(issues({ ...minimal, boot: { kind: 'kernel', kernel: '/k', cmdline: 'x'.repeat(2048) } }), ['boot.cmdline: the kernel command line is at most 2047 bytes on x86']);
  t.deepEqual(issues({ ...minimal, boot: { kind: 'floppy' } }), ['boot.kind: boot is {kind: "kernel", kernel, initrd?, cmdline?} or {kind: "disk", image, format}']);
  t.deepEqual(issues({ ...minimal, accel: 'hvf' }), ['accel: Invalid option: expected one of "auto"|"kvm"|"tcg"']);
});

test('unknown keys are rejected, not ignored', (t) => {
  t.deepEqual(issues({ ...minimal, memory: 512 }), [': Unrecognized key: "memory"']);
  t.deepEqual(issues({ ...minimal, nics: [{ backend: { kind: 'tap', ifname: 't0', vhost: true } }] }), ['nics.0.backend: Unrecognized key: "vhost"']);
});

test('NIC fields: MAC syntax, unicast, fd range, interface names, count', (t) => {
  const nic = (n: object) => issues({ ...minimal, nics: [{ backend: { kind: 'fd', fd: 3 }, ...n }] });
  t.deepEqual(nic({ mac: '52-54-00-12-34-56' }), ['nics.0.mac: a MAC address looks like 52:54:00:12:34:56']);
  t.deepEqual(nic({ mac: '01:00:5e:00:00:01' }), ['nics.0.mac: a NIC needs a unicast MAC address (the first octet must be even)']);
  t.deepEqual(nic({ backend: { kind: 'fd', fd: 2 } }), ['nics.0.backend.fd: fd 0, 1 and 2 are stdin, stdout and stderr, not a network backend']);
  t.deepEqual(nic({ backend: { kind: 'tap', ifname: 'tap0,vhost=off' } }), [
    'nics.0.backend.ifname: an interface name is 1 to 15 letters, digits, "_", "-" or "." (not first)',
  ]);
  t.deepEqual(nic({ backend: { kind: 'tap', ifname: 'a-name-of-16-chr' } }), [
    'nics.0.backend.ifname: an interface name is 1 to 15 letters, digits, "_", "-" or "." (not first)',
  ]);
  t.deepEqual(nic({ model: 'e1000' }), ['nics.0.model: Invalid input: expected "virtio-net-pci"']);
  t.deepEqual(nic({ backend: { kind: 'vhost-user' } }), ['nics.0.backend.kind: a NIC backend is {kind: "fd", fd} or {kind: "tap", ifname}']);
  const nine = Array.from({ length: 9 }, (_, i) => ({ backend: { kind: 'fd', fd: 3 + i } }));
  t.deepEqual(issues({ ...minimal, nics: nine }), ['nics: at most 8 NICs']);
});

test('two NICs cannot share a MAC, a TAP or an fd', (t) => {
  t.deepEqual(
    issues({
      ...minimal,
      nics: [
        { backend: { kind: 'tap', ifname: 'tap0' } },
        { mac: defaultMac('g1', 0), backend: { kind: 'tap', ifname: 'tap0' } },
        { backend: { kind: 'fd', fd: 9 } },
        { backend: { kind: 'fd', fd: 9 } },
      ],
    }),
    [
      `nics.1.mac: MAC ${defaultMac('g1', 0)} is already used by nics[0]`,
      'nics.1.backend.ifname: TAP tap0 is already used by nics[0]',
      'nics.3.backend.fd: fd 9 is already used by nics[2]',
    ],
  );
});

test('the default MAC is stable, locally administered, unicast and differs per NIC and VM', (t) => {
  const a = defaultMac('web', 0);
  t.is(a, defaultMac('web', 0));
  t.regex(a, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const first = parseInt(a.slice(0, 2), 16);
  t.is(first & 0b11, 0b10, 'locally administered (bit 1 set), unicast (bit 0 clear)');
  t.not(defaultMac('web', 1), a);
  t.not(defaultMac('db', 0), a);
  t.is(nicMac('web', 0, {}), a);
  t.is(nicMac('web', 0, { mac: '02:00:00:00:00:01' }), '02:00:00:00:00:01');
});

test('the schema is the contract: its JSON Schema can be generated for the REST API', (t) => {
  const js = z.toJSONSchema(VmSpecSchema, { io: 'input', unrepresentable: 'any' }) as { required?: string[] };
  t.deepEqual(js.required, ['name', 'boot']);
});
