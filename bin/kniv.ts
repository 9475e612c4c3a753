#!/usr/bin/env node
// kniv: the command-line entry point. main() returns an exit code.
import { z } from 'zod';
import { UsageError } from './cli.js';

const commands: Record<string, { help: string; run: (argv: string[]) => Promise<number> }> = {
  start: { help: 'run the appliance (natively or in the appliance VM) and print its URL', run: async (a) => (await import('../server/start.js')).start(a) },
  serve: { help: 'run the service on this system', run: async (a) => (await import('../server/start.js')).serve(a) },
  vm: { help: 'vm run: a command inside the appliance VM; vm guest: boot a guest', run: vm },
  sock: { help: "a KNI interface's vhost-net socket: exec a command with it, status, vnet-hdr, disable", run: async (a) => (await import('../sysfs-tools/kni-sock.js')).sock(a) },
  info: { help: 'show whether kni.ko is loaded, its ABI and parameters', run: async (a) => (await import('../sysfs-tools/kni-info.js')).info(a) },
  bench: { help: 'bench exception-path | pool | vhost: KNI against TAP, to a Linux socket and to a guest', run: async (a) => (await import('../bench/cli.js')).bench(a) },
  test: { help: 'run the test suites: on the host, then inside the appliance VM on each kernel', run: async (a) => (await import('../test/runner.js')).runTests(a) },
};

async function vm(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'run') return (await import('../qemu/vm-cli.js')).vmRun(rest);
  if (sub === 'guest') return (await import('../qemu/guest-cli.js')).vmGuest(rest);
  throw new UsageError(sub === undefined ? 'kniv vm: a subcommand is required: run or guest' : `kniv vm: unknown subcommand ${JSON.stringify(sub)}`);
}

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.help}`);
  return `usage: kniv <command> [options]\n\ncommands:\n${rows.join('\n')}\n\n'kniv <command> --help' describes one.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`kniv: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof z.ZodError) {
      process.stderr.write(`kniv ${name}: invalid input\n${z.prettifyError(err)}\n`);
      return 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`kniv ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`kniv ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
