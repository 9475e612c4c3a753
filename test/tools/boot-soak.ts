// Boots the nested test guest many times inside the appliance VM and counts
// the boots whose kernel reported a problem: the measurement behind
// docs/guests.md, "Nested TCG and the CPU model". Run it in the appliance:
//
//   KNIV_TCG_CPU=max node dist/kniv/kniv.js vm run --kernel 6.12 -- \
//     node dist/test/tools/boot-soak.js --boots 30 --parallel 2 --nics kni
//
// KNIV_TCG_CPU reaches both levels (the appliance's qemu and the guest's).
// --nics kni gives each guest two KNI sockets under vhost-net (VNET_HDR off
// and on), each forwarded by the data plane to a veth whose far end, in a
// namespace, pings the guest once it is up; --nics none boots it without any.
// Each boot is judged as CI judges it: a problem line anywhere on its console.
// Prints one JSON line per boot and a summary line; exits 1 if any boot faulted.
import { mkdtempSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { tcgCpuModel } from '../../qemu/accel.js';
import { formatProblem } from '../../qemu/console.js';
import { GUEST_READY, guestBoot } from '../../qemu/guest-image.js';
import { loadKernels } from '../../qemu/kernels.js';
import { launchVm, type Vm } from '../../qemu/launcher.js';

const { values } = parseArgs({
  options: {
    boots: { type: 'string', default: '30' },
    parallel: { type: 'string', default: '2' },
    nics: { type: 'string', default: 'kni' },
    memory: { type: 'string', default: '256' },
  },
});
const boots = Number(values.boots);
const parallel = Number(values.parallel);
const withNics = values.nics === 'kni';
if (!(boots > 0 && parallel > 0) || !['kni', 'none'].includes(values.nics!)) {
  process.stderr.write('usage: boot-soak [--boots N] [--parallel P] [--nics kni|none] [--memory MIB]\n');
  process.exit(2);
}

const kernel = [...loadKernels().values()].find((k) => k.release === release());
if (!kernel) throw new Error(`run this inside the appliance VM, not on ${release()}`);
const native = withNics ? await import('../../native/index.js') : undefined;
const sh = (cmd: string) => execa('sh', ['-c', cmd], { all: true });

interface BootResult {
  boot: number;
  slot: number;
  readySeconds: number | null;
  pinged: boolean | null;
  problems: string[];
  artifact: string | null;
  error: string | null;
}

async function oneBoot(boot: number, slot: number): Promise<BootResult> {
  const runDir = mkdtempSync(join(tmpdir(), 'kniv-soak-'));
  const undo: (() => unknown)[] = [() => rmSync(runDir, { recursive: true, force: true })];
  const nics: { ns: string; peer: string; guest: string; fd: number }[] = [];
  let vm: Vm | undefined;
  const result: BootResult = { boot, slot, readySeconds: null, pinged: null, problems: [], artifact: null, error: null };
  try {
    if (native) {
      const kni = new native.Kni();
      undo.push(() => kni.close());
      for (const j of [0, 1]) {
        const ns = `ksoak${slot}${j}`;
        const net = `10.${80 + slot}.${j}`;
        await sh(`ip netns add ${ns} && ip link add ks${slot}${j}a type veth peer name ks${slot}${j}b && ip link set ks${slot}${j}b netns ${ns} && ip link set ks${slot}${j}a up`);
        undo.push(() => sh(`ip netns del ${ns}; ip link del ks${slot}${j}a`).catch(() => undefined));
        await sh(`ip -n ${ns} addr add ${net}.1/24 dev ks${slot}${j}b && ip -n ${ns} link set ks${slot}${j}b up`);
        const iface = kni.create({ name: `ks${slot}${j}k` });
        const plane = new native.DataPlane([{ iface, port: { kind: 'packet', ifname: `ks${slot}${j}a` } }]);
        undo.push(() => plane.stop());
        native.setVnetHdr(iface.name, j === 1);
        nics.push({ ns, peer: `${net}.1`, guest: `${net}.2`, fd: native.enableSocket(iface.name) });
      }
    }
    const started = Date.now();
    try {
      vm = await launchVm({
        spec: {
          name: `soak${slot}`,
          memoryMiB: Number(values.memory),
          boot: guestBoot(kernel!, { net: nics.map((n, j) => ({ ifname: `eth${j}`, address: `${n.guest}/24` })) }),
          nics: nics.map((n) => ({ vhost: true, backend: { kind: 'fd' as const, fd: n.fd } })),
        },
        runDir,
      });
    } finally {
      for (const n of nics) native!.closeFd(n.fd);
    }
    const guest = vm;
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), 15 * 60_000);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        guest.off('console', onLine);
        guest.off('exit', onExit);
        resolve(ok);
      };
      const onLine = (l: string) => GUEST_READY.test(l) && done(true);
      const onExit = () => done(false);
      guest.on('console', onLine);
      guest.on('exit', onExit);
    });
    result.readySeconds = ready ? (Date.now() - started) / 1000 : null;
    if (ready && nics.length > 0) {
      const pings = await Promise.all(nics.map((n) => execa('ip', ['netns', 'exec', n.ns, 'ping', '-c', '1', '-W', '20', n.guest], { reject: false })));
      result.pinged = pings.every((p) => p.exitCode === 0);
    }
    // A few seconds more of the guest's life, then it stops.
    await new Promise((r) => setTimeout(r, 2000));
    await guest.stop();
    result.problems = guest.kernelProblems.map(formatProblem);
    // The launcher kept the console of a faulted guest when qemu exited.
    result.artifact = guest.keptConsole ?? null;
    if (!ready) result.error = `not ready; console tail:\n${guest.consoleTail(20).join('\n')}`;
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    if (vm && !vm.hasExited) await vm.stop().catch(() => undefined);
    for (const u of undo.reverse()) await u();
  }
  return result;
}

const results: BootResult[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: parallel }, async (_, slot) => {
    while (next < boots) {
      const r = await oneBoot(next++, slot);
      results.push(r);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  }),
);
const faulted = results.filter((r) => r.problems.length > 0);
const ready = results.map((r) => r.readySeconds).filter((x): x is number => x !== null).sort((a, b) => a - b);
const summary = {
  summary: true,
  kernel: release(),
  cpu: tcgCpuModel(),
  nics: values.nics,
  parallel,
  boots: results.length,
  faulted: faulted.length,
  notReady: results.filter((r) => r.readySeconds === null).length,
  pingFailed: results.filter((r) => r.pinged === false).length,
  readyMedianSeconds: ready[Math.floor(ready.length / 2)] ?? null,
  readyMaxSeconds: ready.at(-1) ?? null,
  firstProblemLines: faulted.map((r) => r.problems[0]!.split('\n')[0]),
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(faulted.length > 0 || summary.notReady > 0 ? 1 : 0);
