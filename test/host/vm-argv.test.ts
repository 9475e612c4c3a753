// vmArgv: every branch of the guest command line.
import test from 'ava';
import { nicVirtioPath, optValue, vmArgv, type VmRuntime } from '../../qemu/vm-argv.js';
import { defaultMac, VmSpecSchema, type VmSpecInput } from '../../qemu/vm-spec.js';

const rt: VmRuntime = {
  kvmUsable: false,
  tcgCpu: 'Nehalem',
  qmpSocket: '/run/g/qmp.sock',
  console: { kind: 'socket', path: '/run/g/console.sock' },
  pidfile: '/run/g/qemu.pid',
  nicFds: [],
  paused: false,
};
const base: VmSpecInput = { name: 'g1', vcpus: 2, memoryMiB: 384, boot: { kind: 'kernel', kernel: '/k/vmlinuz', cmdline: 'console=ttyS0 quiet' } };
const argvOf = (spec: VmSpecInput, r: Partial<VmRuntime> = {}) => vmArgv(VmSpecSchema.parse(spec), { ...rt, ...r });
const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

test('no defaults, no user config, no display, q35, name, vCPUs, memory, pidfile', (t) => {
  const argv = argvOf(base);
  for (const flag of ['-nodefaults', '-no-user-config']) t.true(argv.includes(flag), flag);
  t.deepEqual(after(argv, '-display'), ['none']);
  t.deepEqual(after(argv, '-machine'), ['q35']);
  t.deepEqual(after(argv, '-name'), ['g1']);
  t.deepEqual(after(argv, '-smp'), ['2']);
  t.deepEqual(after(argv, '-m'), ['384M']);
  t.deepEqual(after(argv, '-pidfile'), ['/run/g/qemu.pid']);
  t.false(argv.includes('-S'));
  t.false(argv.includes('-no-reboot'), 'QMP system_reset must reset, not shut down');
});

test('accel: auto follows KVM usability, kvm and tcg are taken as given', (t) => {
  const accel = (accel: 'auto' | 'kvm' | 'tcg', kvmUsable: boolean) => {
    const argv = argvOf({ ...base, accel }, { kvmUsable });
    return [...after(argv, '-accel'), ...after(argv, '-cpu')];
  };
  t.deepEqual(accel('auto', false), ['tcg', 'Nehalem']);
  t.deepEqual(accel('auto', true), ['kvm', 'host']);
  t.deepEqual(accel('kvm', false), ['kvm', 'host']);
  t.deepEqual(accel('tcg', true), ['tcg', 'Nehalem']);
});

test('QMP is a unix socket server that does not wait; -S when started paused', (t) => {
  const argv = argvOf(base, { paused: true });
  t.deepEqual(after(argv, '-mon'), ['chardev=qmp,mode=control']);
  t.true(after(argv, '-chardev').includes('socket,id=qmp,path=/run/g/qmp.sock,server=on,wait=off'));
  t.true(argv.includes('-S'));
});

test('console: a listening socket, a file qemu appends to, or none', (t) => {
  const sock = argvOf(base);
  t.true(after(sock, '-chardev').includes('socket,id=console,path=/run/g/console.sock,server=on,wait=off'));
  t.deepEqual(after(sock, '-serial'), ['chardev:console']);
  const file = argvOf(base, { console: { kind: 'file', path: '/var/log/g.log' } });
  t.true(after(file, '-chardev').includes('file,id=console,path=/var/log/g.log,append=on'));
  t.deepEqual(after(file, '-serial'), ['chardev:console']);
  const none = argvOf(base, { console: { kind: 'none' } });
  t.deepEqual(after(none, '-serial'), []);
  t.deepEqual(after(none, '-chardev'), ['socket,id=qmp,path=/run/g/qmp.sock,server=on,wait=off']);
});

test('commas in paths are doubled inside option values, and left alone in plain arguments', (t) => {
  t.is(optValue('/a,b,,c'), '/a,,b,,,,c');
  const argv = argvOf(
    { ...base, boot: { kind: 'kernel', kernel: '/k,1/vmlinuz', initrd: '/k,1/initrd', cmdline: 'a=b,c' } },
    { qmpSocket: '/r,x/qmp.sock', pidfile: '/r,x/pid' },
  );
  t.deepEqual(after(argv, '-kernel'), ['/k,1/vmlinuz']);
  t.deepEqual(after(argv, '-initrd'), ['/k,1/initrd']);
  t.deepEqual(after(argv, '-append'), ['a=b,c']);
  t.deepEqual(after(argv, '-pidfile'), ['/r,x/pid']);
  t.true(after(argv, '-chardev').includes('socket,id=qmp,path=/r,,x/qmp.sock,server=on,wait=off'));
});

test('kernel boot: -kernel, optional -initrd, -append as one element', (t) => {
  const argv = argvOf(base);
  t.deepEqual(after(argv, '-kernel'), ['/k/vmlinuz']);
  t.deepEqual(after(argv, '-initrd'), []);
  t.deepEqual(after(argv, '-append'), ['console=ttyS0 quiet']);
  t.deepEqual(after(argvOf({ ...base, boot: { kind: 'kernel', kernel: '/k', initrd: '/i' } }), '-initrd'), ['/i']);
  t.deepEqual(after(argvOf({ ...base, boot: { kind: 'kernel', kernel: '/k' } }), '-append'), ['']);
});

test('disk boot: a virtio disk with an explicit format, first in boot order', (t) => {
  const argv = argvOf({ ...base, boot: { kind: 'disk', image: '/img/a,b.qcow2', format: 'qcow2' } });
  t.deepEqual(after(argv, '-drive'), ['if=none,id=disk0,file=/img/a,,b.qcow2,format=qcow2']);
  t.deepEqual(after(argv, '-device'), ['virtio-blk-pci,drive=disk0,bootindex=0']);
  t.false(argv.includes('-kernel'));
  t.false(argv.includes('-append'));
});

test('NICs: fd backends use the child fd, TAP backends the name; vhost on or off; MAC given or derived', (t) => {
  const argv = argvOf(
    {
      ...base,
      nics: [
        { backend: { kind: 'fd', fd: 40 } },
        { vhost: false, mac: '52:54:00:00:00:02', backend: { kind: 'tap', ifname: 'kvtap1' } },
        { vhost: false, backend: { kind: 'fd', fd: 41 } },
      ],
    },
    { nicFds: [3, undefined, 4] },
  );
  t.deepEqual(after(argv, '-netdev'), [
    'tap,id=net0,fd=3,vhost=on',
    'tap,id=net1,ifname=kvtap1,script=no,downscript=no,vhost=off',
    'tap,id=net2,fd=4,vhost=off',
  ]);
  t.deepEqual(after(argv, '-device'), [
    `virtio-net-pci,id=nic0,netdev=net0,mac=${defaultMac('g1', 0)}`,
    'virtio-net-pci,id=nic1,netdev=net1,mac=52:54:00:00:00:02',
    `virtio-net-pci,id=nic2,netdev=net2,mac=${defaultMac('g1', 2)}`,
  ]);
  t.is(nicVirtioPath(1), '/machine/peripheral/nic1/virtio-backend');
});

test('a TAP NIC may ask qemu for virtio-net headers or refuse them; unset leaves qemu its default', (t) => {
  const argv = argvOf({
    ...base,
    nics: [
      { backend: { kind: 'tap', ifname: 'kvt0', vnetHdr: true } },
      { backend: { kind: 'tap', ifname: 'kvt1', vnetHdr: false } },
      { backend: { kind: 'tap', ifname: 'kvt2' } },
    ],
  });
  t.deepEqual(after(argv, '-netdev'), [
    'tap,id=net0,ifname=kvt0,script=no,downscript=no,vnet_hdr=on,vhost=on',
    'tap,id=net1,ifname=kvt1,script=no,downscript=no,vnet_hdr=off,vhost=on',
    'tap,id=net2,ifname=kvt2,script=no,downscript=no,vhost=on',
  ]);
});

test('an fd NIC without a child fd in the runtime is a programming error, said plainly', (t) => {
  t.throws(() => argvOf({ ...base, nics: [{ backend: { kind: 'fd', fd: 9 } }] }, { nicFds: [] }), {
    message: 'nics[0] uses an fd backend but the runtime gives it no child fd',
  });
});

test('no NIC, no -netdev', (t) => {
  t.deepEqual(after(argvOf(base), '-netdev'), []);
});
