import test from 'ava';
import { DEFAULT_TCG_CPU, tcgCpuModel } from '../../qemu/accel.js';
import { applianceArgv, type ApplianceArgvSpec } from '../../qemu/appliance-argv.js';

const spec: ApplianceArgvSpec = {
  kernel: '/k/vmlinux',
  initrd: '/k/initrd.cpio',
  memoryMiB: 1024,
  cpus: 2,
  kvm: false,
  tcgCpu: 'Nehalem',
  kernelArgs: ['console=ttyS0', 'panic=-1'],
  fwcfg: { config: Buffer.from('A=1, B=2').toString('base64') },
  forwards: [],
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

test('TCG when KVM is not usable, KVM with the host CPU when it is', (t) => {
  const tcg = applianceArgv(spec);
  t.deepEqual(after(tcg, '-accel'), ['tcg,thread=multi']);
  t.deepEqual(after(tcg, '-cpu'), ['Nehalem']);
  const kvm = applianceArgv({ ...spec, kvm: true });
  t.deepEqual(after(kvm, '-accel'), ['kvm']);
  t.deepEqual(after(kvm, '-cpu'), ['host']);
});

test('kernel, initrd, memory and the kernel command line are single argv elements', (t) => {
  const argv = applianceArgv(spec);
  t.deepEqual(after(argv, '-kernel'), ['/k/vmlinux']);
  t.deepEqual(after(argv, '-initrd'), ['/k/initrd.cpio']);
  t.deepEqual(after(argv, '-m'), ['1024M']);
  t.deepEqual(after(argv, '-append'), ['console=ttyS0 panic=-1']);
  t.true(argv.includes('-no-reboot'));
});

test('the host root is shared read-only and the output channels use fds 3 to 6', (t) => {
  const argv = applianceArgv(spec);
  t.deepEqual(after(argv, '-virtfs'), ['local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap']);
  t.deepEqual(after(argv, '-chardev'), [
    'socket,id=console,fd=3',
    'socket,id=stdout,fd=4',
    'socket,id=stderr,fd=5',
    'socket,id=status,fd=6',
  ]);
  t.is(after(argv, '-device').filter((d) => d.startsWith('virtconsole')).length, 3);
});

test('no network device unless a port is forwarded, and then a restricted one', (t) => {
  t.false(applianceArgv(spec).includes('-netdev'));
  const argv = applianceArgv({ ...spec, forwards: [{ hostAddress: '127.0.0.1', hostPort: 18080, guestPort: 8080 }] });
  t.deepEqual(after(argv, '-netdev'), ['user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080']);
});

test('fw_cfg items must be base64 so that no comma can split the option', (t) => {
  t.deepEqual(after(applianceArgv(spec), '-fw_cfg'), [`name=opt/kniv/config,string=${spec.fwcfg.config}`]);
  t.throws(() => applianceArgv({ ...spec, fwcfg: { config: 'a,b' } }), { message: /base64/ });
  t.throws(() => applianceArgv({ ...spec, fwcfg: { 'x,y': 'QQ==' } }), { message: /fw_cfg name/ });
});

test('the TCG CPU model is Nehalem unless KNIV_TCG_CPU names another, which must be a -cpu value', (t) => {
  const saved = process.env.KNIV_TCG_CPU;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KNIV_TCG_CPU;
    else process.env.KNIV_TCG_CPU = saved;
  });
  delete process.env.KNIV_TCG_CPU;
  t.is(tcgCpuModel(), DEFAULT_TCG_CPU);
  t.is(DEFAULT_TCG_CPU, 'Nehalem');
  process.env.KNIV_TCG_CPU = 'max,-avx2,-bmi2';
  t.is(tcgCpuModel(), 'max,-avx2,-bmi2');
  for (const bad of ['max;reboot', 'max,,x', ',max', 'max -S']) {
    process.env.KNIV_TCG_CPU = bad;
    t.throws(() => tcgCpuModel(), { message: /KNIV_TCG_CPU must be a qemu -cpu value/ }, bad);
  }
});
