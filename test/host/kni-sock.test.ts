// `kniv sock` on the host, which has no KNI interfaces: argument handling and
// refusals. Enabling a real socket is tested inside the appliance VM once
// kni.ko has it.
import test from 'ava';
import { substituteFd } from '../../sysfs-tools/kni-sock.js';
import { kniSocketInterfaces } from '../../sysfs-tools/sock-sysfs.js';
import { runKniv } from '../lib/util.js';

test('{fd} is replaced wherever it appears, and nothing else is touched', (t) => {
  t.deepEqual(substituteFd(['qemu', '-netdev', 'tap,id=n0,fd={fd},vhost=on', '{fd}{fd}', '{FD}', '$(fd)'], 3), [
    'qemu', '-netdev', 'tap,id=n0,fd=3,vhost=on', '33', '{FD}', '$(fd)',
  ]);
});

test('usage errors exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['sock'], /a subcommand is required/],
    [['sock', 'open', 'vEth0'], /unknown subcommand "open"/],
    [['sock', 'exec', 'vEth0'], /a command is required after "--"/],
    [['sock', 'exec', '--', 'true'], /usage: kniv sock exec <ifname> -- <command>/],
    [['sock', 'exec', 'a/b', '--', 'true'], /"a\/b" is not an interface name/],
    [['sock', 'vnet-hdr', 'vEth0', 'yes'], /the value is on or off, not "yes"/],
    [['sock', 'disable'], /usage: kniv sock disable <ifname>/],
  ];
  for (const [args, re] of cases) {
    const r = await runKniv(args);
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(r.stderr, re);
  }
});

test('an interface that is not KNI is refused with status 1, before anything runs', async (t) => {
  t.deepEqual(kniSocketInterfaces(), [], 'the host has no KNI interfaces');
  for (const args of [['sock', 'exec', 'lo', '--', 'touch', '/nonexistent/ran'], ['sock', 'status', 'lo'], ['sock', 'vnet-hdr', 'lo', 'on'], ['sock', 'disable', 'lo']]) {
    const r = await runKniv(args);
    t.is(r.exitCode, 1, args.join(' '));
    t.is(r.stderr, 'kniv sock: lo is not a KNI interface with a socket (no /sys/class/net/lo/sock_en)');
  }
  const none = await runKniv(['sock', 'status', '--json']);
  t.is(none.exitCode, 0);
  t.deepEqual(JSON.parse(none.stdout), []);
});
