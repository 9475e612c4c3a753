// kni.ko in the appliance VM (run by `kniv test` on each kernel). The tests
// load and unload the module, so they run one at a time.
import test from 'ava';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { execa } from 'execa';
import { addonAbiVersion, moduleInfo } from '../../native/index.js';
import { kniModulePath } from '../../qemu/kernels.js';
import { kernelLogSince, kernelProblem } from '../lib/probe.js';
import { waitFor } from '../lib/util.js';

const ko = kniModulePath(release());
const loaded = () => existsSync('/sys/module/kni');
const devKni = () => existsSync('/dev/kni');

async function load(...params: string[]) {
  await execa('insmod', [ko, ...params]);
  // devtmpfs creates the node asynchronously.
  if (!(await waitFor(devKni, 5000))) throw new Error('/dev/kni did not appear');
}

async function unload() {
  await execa('rmmod', ['kni']);
  if (!(await waitFor(() => !devKni(), 5000))) throw new Error('/dev/kni did not go away');
}

test.before(() => {
  if (!release().match(/^6\.(1|12)\./)) throw new Error(`these tests run inside the appliance VM, not on ${release()}`);
});

test.serial('kni.ko is loaded at boot and registers /dev/kni, open to all as /dev/net/tun (capabilities decide: privileges.test.ts)', (t) => {
  t.true(loaded());
  t.is(readFileSync('/sys/module/kni/initstate', 'utf8').trim(), 'live');
  const st = statSync('/dev/kni');
  t.true(st.isCharacterDevice());
  t.is(st.mode & 0o777, 0o666);
  t.like(moduleInfo(), { abiVersion: 5, kthreadMode: 'single', interfaces: 0, sharedMemoryBytes: 0 });
});

test.serial('kthread_mode is shown in sysfs and cannot be changed after load', (t) => {
  const param = '/sys/module/kni/parameters/kthread_mode';
  t.is(readFileSync(param, 'utf8'), 'single\n');
  t.is(statSync(param).mode & 0o777, 0o444);
  t.throws(() => writeFileSync(param, 'multiple'), { code: 'EACCES' });
});

// Raw ioctls with deliberately wrong arguments, from Python's fcntl.
const KNI_IOCTL_INFO = 0xc020ce00; // _IOWR(0xCE, 0, struct kni_info), 32 bytes: size abi mode ifaces shm(2 words) threads sockets
const ioctlProbe = `
import fcntl, os, struct, sys, ctypes
fd = os.open('/dev/kni', os.O_RDWR)
def call(cmd, buf):
    try:
        out = fcntl.ioctl(fd, cmd, buf)
        return 'ok ' + ' '.join(str(x) for x in struct.unpack('8I', out))
    except OSError as e:
        return 'errno ' + str(e.errno)
info = ${KNI_IOCTL_INFO}
print(call(info, struct.pack('8I', 32, 0, 0, 0, 0, 0, 0, 0)))
print(call(info, struct.pack('8I', 16, 0, 0, 0, 0, 0, 0, 0)))
print(call(info, struct.pack('8I', 32, 0, 0, 0, 0, 0, 0, 1)))
print(call(0xc020ce7f, struct.pack('8I', 32, 0, 0, 0, 0, 0, 0, 0)))
print(call(0xc010ce00, struct.pack('4I', 16, 0, 0, 0)))
# A pointer to unmapped memory: the kernel must answer EFAULT.
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ioctl(fd, ctypes.c_ulong(info), ctypes.c_void_p(8))
print('raw', r, ctypes.get_errno())
`;

test.serial('KNI_IOCTL_INFO checks size, command and pointer', async (t) => {
  const r = await execa('python3', ['-c', ioctlProbe]);
  t.deepEqual(r.stdout.split('\n'), [
    'ok 32 5 0 0 0 0 0 0',
    'errno 22', // size field is not sizeof(struct kni_info)
    'ok 32 5 0 0 0 0 0 0', // sockets is out-only: what came in is overwritten
    'errno 25', // a number kni.ko does not know: ENOTTY
    'errno 22', // a known command with the wrong encoded size
    'raw -1 14', // EFAULT
  ]);
});

test.serial('a bad kthread_mode refuses to load and says why', async (t) => {
  await unload();
  const before = (await execa('dmesg')).stdout.split('\n').length;
  const r = await execa('insmod', [ko, 'kthread_mode=bogus'], { reject: false });
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /Invalid (parameters|argument)/);
  t.false(loaded());
  const dmesg = (await execa('dmesg')).stdout.split('\n').slice(before - 1).join('\n');
  t.regex(dmesg, /kni: invalid kthread_mode 'bogus': expected 'single' or 'multiple'/);
  await load();
  t.true(loaded());
});

test.serial('load and unload 20 times, alternating kthread modes', async (t) => {
  const logSince = await kernelLogSince();
  for (let i = 0; i < 20; i++) {
    const mode = i % 2 === 0 ? 'multiple' : 'single';
    await unload();
    t.false(loaded());
    await load(`kthread_mode=${mode}`);
    t.is(moduleInfo().kthreadMode, mode);
  }
  const log = await logSince();
  t.notRegex(log, kernelProblem);
  const loads = log.match(new RegExp(`kni: loaded, ABI ${addonAbiVersion}, `, 'g')) ?? [];
  t.is(loads.length, 20, `kni.ko announced ABI ${addonAbiVersion} on ${loads.length} of 20 loads`);
  await unload();
  await load();
});
