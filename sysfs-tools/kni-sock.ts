// `kniv sock`: a KNI interface's vhost-net socket from the command line.
//
// `kniv sock exec vEth0 -- qemu-system-x86_64 ... -netdev tap,id=n0,fd={fd},vhost=on`
// is the safe form of the old recipe `echo 1 > .../sock_en; qemu ... fd=$(cat sock_fd)`:
// the socket is enabled in this process (with FD_CLOEXEC, so nothing else
// inherits it), handed to the command as one inherited descriptor, and
// detached again when the command ends.
import { constants } from 'node:os';
import { execa } from 'execa';
import { helpText, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { IfnameSchema } from '../qemu/vm-spec.js';
import { closeFd, disableSocket, enableSocket, isKniSocketInterface, kniSocketInterfaces, setVnetHdr, socketStatus } from './sock-sysfs.js';

/** The descriptor number the command gets the socket on. */
export const CHILD_FD = 3;

const SUMMARY = `Controls the vhost-net socket of KNI interfaces (kni.ko ABI 4).

  exec <ifname> -- <command...>   enable the socket, run the command with it as fd ${CHILD_FD}
                                  ("{fd}" in its arguments becomes ${CHILD_FD}), detach it when
                                  the command ends; exits with the command's status
  status [ifname] [--json]        whether each socket is enabled, its fd, VNET_HDR
  vnet-hdr <ifname> on|off        VNET_HDR for the next enable (only while disabled)
  disable <ifname>                detach the socket`;

const USAGE = 'kniv sock exec|status|vnet-hdr|disable ...';
const table: OptionsTable = { json: { type: 'boolean', help: 'status: print JSON' } };

/** Replace every "{fd}" in the command's words with the descriptor number it gets. */
export function substituteFd(words: readonly string[], fd: number): string[] {
  return words.map((w) => w.replaceAll('{fd}', String(fd)));
}

function ifnameArg(value: string | undefined, sub: string): string {
  if (value === undefined) throw new UsageError(`kniv sock ${sub}: an interface name is required`);
  const r = IfnameSchema.safeParse(value);
  if (!r.success) throw new UsageError(`kniv sock ${sub}: ${JSON.stringify(value)} is not an interface name`);
  return r.data;
}

function requireKni(ifname: string): void {
  if (!isKniSocketInterface(ifname)) throw new NotKni(ifname);
}

class NotKni extends Error {
  constructor(ifname: string) {
    super(`${ifname} is not a KNI interface with a socket (no /sys/class/net/${ifname}/sock_en)`);
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

async function exec(ifname: string, command: string[]): Promise<number> {
  requireKni(ifname);
  const fd = enableSocket(ifname);
  try {
    const [file, ...args] = substituteFd(command, CHILD_FD);
    const child = execa(file!, args, {
      // The socket is dup'ed into the child at fd 3 without FD_CLOEXEC; our copy keeps it.
      stdio: ['inherit', 'inherit', 'inherit', fd] as unknown as ['inherit', 'inherit', 'inherit', 3],
      reject: false,
    });
    // The child holds the socket now; this process must not keep a second reference.
    closeFd(fd);
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    for (const s of SIGNALS) process.on(s, forward);
    try {
      const r = await child;
      if (r.failed && r.exitCode === undefined && r.signal === undefined) {
        process.stderr.write(`kniv sock exec: cannot run ${file}: ${r.originalMessage ?? r.message}\n`);
        return 127;
      }
      if (r.signal !== undefined) return 128 + (constants.signals[r.signal as NodeJS.Signals] ?? 0);
      return r.exitCode ?? 1;
    } finally {
      for (const s of SIGNALS) process.off(s, forward);
    }
  } finally {
    disableSocket(ifname);
  }
}

function errnoCode(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

function status(argv: string[], json: boolean): number {
  const names = argv.length > 0 ? argv.map((a) => ifnameArg(a, 'status')) : kniSocketInterfaces();
  for (const n of names) requireKni(n);
  const all = names.map(socketStatus);
  if (json) {
    process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    return 0;
  }
  if (all.length === 0) {
    process.stdout.write('no KNI interfaces with a socket\n');
    return 0;
  }
  const rows = [['INTERFACE', 'SOCKET', 'FD', 'VNET_HDR'], ...all.map((s) => [s.ifname, s.enabled ? 'enabled' : 'disabled', s.fd === undefined ? '-' : String(s.fd), s.vnetHdr ? 'on' : 'off'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  return 0;
}

function vnetHdr(ifname: string, value: string | undefined): number {
  if (value !== 'on' && value !== 'off') throw new UsageError(`kniv sock vnet-hdr: the value is on or off, not ${JSON.stringify(value)}`);
  requireKni(ifname);
  try {
    setVnetHdr(ifname, value === 'on');
  } catch (err) {
    if (errnoCode(err) === 'EBUSY') {
      process.stderr.write(`kniv sock: cannot change VNET_HDR of ${ifname} while its socket is enabled; run "kniv sock disable ${ifname}" first\n`);
      return 1;
    }
    throw err;
  }
  return 0;
}

export async function sock(argv: string[]): Promise<number> {
  // Everything after "--" belongs to the command, options included.
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const command = dash === -1 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parse(own, table);
  if (values.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, table));
    return 0;
  }
  const [sub, ...rest] = positionals;
  try {
    switch (sub) {
      case 'exec': {
        if (rest.length !== 1) throw new UsageError('kniv sock exec: usage: kniv sock exec <ifname> -- <command> [args...]');
        if (command.length === 0) throw new UsageError('kniv sock exec: a command is required after "--"');
        return await exec(ifnameArg(rest[0], 'exec'), command);
      }
      case 'status':
        return status(rest, values.json === true);
      case 'vnet-hdr':
        if (rest.length !== 2) throw new UsageError('kniv sock vnet-hdr: usage: kniv sock vnet-hdr <ifname> on|off');
        return vnetHdr(ifnameArg(rest[0], 'vnet-hdr'), rest[1]);
      case 'disable': {
        if (rest.length !== 1) throw new UsageError('kniv sock disable: usage: kniv sock disable <ifname>');
        const ifname = ifnameArg(rest[0], 'disable');
        requireKni(ifname);
        disableSocket(ifname);
        return 0;
      }
      case undefined:
        throw new UsageError(`a subcommand is required\n\n${helpText(USAGE, SUMMARY, table)}`);
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: exec, status, vnet-hdr or disable`);
    }
  } catch (err) {
    if (err instanceof NotKni) {
      process.stderr.write(`kniv sock: ${err.message}\n`);
      return 1;
    }
    if (errnoCode(err) === 'EBUSY') {
      process.stderr.write(`kniv sock: the socket of ${rest[0]} is already enabled (by another process?); "kniv sock disable ${rest[0]}" detaches it\n`);
      return 1;
    }
    throw err;
  }
}
