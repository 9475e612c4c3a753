// `kniv serve` runs the service on this system; `kniv start` runs it where
// kni.ko can be loaded: natively on a host that can load modules, otherwise
// inside the appliance VM with the port forwarded.
import { chmodSync, existsSync, lstatSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { release } from 'node:os';
import { execa } from 'execa';
import { helpText, intOption, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { reportFailure, runInterruptible } from '../qemu/vm-cli.js';
import { guestImage } from '../qemu/guest-image.js';
import { kernel as kernelFor, KernelLabelSchema } from '../qemu/kernels.js';
import { knivCommand, projectRoot } from '../qemu/paths.js';
import { buildApp } from './app.js';
import { KniVhostBench } from './drivers/bench-runner.js';
import { NativeKniDriver } from './drivers/kni-native.js';
import { QemuRunner } from './drivers/qemu-runner.js';
import { systemProbe } from './drivers/system-probe.js';
import { createLogger } from './log.js';
import { Service } from './service.js';
import { defaultStateDir, loadOrCreateToken, prepareStateDir } from './state-dir.js';
import { systemFacts } from './system.js';

const DEFAULT_PORT = 8080;

const serveTable: OptionsTable = {
  host: { type: 'string', value: 'ADDRESS', help: 'address to listen on (default 127.0.0.1)' },
  port: { type: 'string', value: 'PORT', help: `TCP port (default ${DEFAULT_PORT}, or KNIV_PORT)` },
  socket: { type: 'string', value: 'PATH', help: 'listen on this unix socket instead of TCP (mode 0600)' },
  'state-dir': { type: 'string', value: 'DIR', help: `token, database, VM run directories (default ${defaultStateDir()}, or KNIV_STATE_DIR)` },
  'run-dir': { type: 'string', value: 'DIR', help: "VM run directories: qemu's QMP and console sockets, pid file, console log (default STATE_DIR/vms)" },
};

function port(value: unknown): number {
  return intOption('port', value ?? process.env.KNIV_PORT, 1, 65535) ?? DEFAULT_PORT;
}

/** Resolves when SIGINT or SIGTERM arrives. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (s: NodeJS.Signals) => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(s);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A unix socket path left behind by a service that died is removed; anything else there is an error. */
function clearStaleSocket(path: string): void {
  try {
    if (!lstatSync(path).isSocket()) throw new UsageError(`--socket ${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  rmSync(path);
}

export async function serve(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveTable, false);
  if (values.help) {
    process.stdout.write(helpText('kniv serve [options]', 'Runs the kniv service on this system.', serveTable));
    return 0;
  }
  const socketPath = values.socket as string | undefined;
  if (socketPath !== undefined && (values.host !== undefined || values.port !== undefined)) {
    throw new UsageError('--socket cannot be combined with --host or --port');
  }
  const stateDir = resolve((values['state-dir'] as string | undefined) ?? defaultStateDir());
  const paths = prepareStateDir(stateDir);
  const { token, created } = loadOrCreateToken(paths.token);
  const logger = createLogger();
  const runner = await QemuRunner.create();
  const runDir = values['run-dir'] as string | undefined;
  const service = await Service.open(
    { stateDir, logger, ...(runDir !== undefined ? { runDir: resolve(runDir) } : {}) },
    { kni: new NativeKniDriver(), vms: runner, bench: new KniVhostBench((line) => logger.info({ component: 'benchmarks' }, line)), probe: systemProbe(runner.version) },
  );
  const app = buildApp({ token, logger, version: packageVersion() }, { system: systemFacts, service });
  let where: string;
  try {
    if (socketPath !== undefined) {
      clearStaleSocket(socketPath);
      await app.listen({ path: socketPath });
      chmodSync(socketPath, 0o600);
      where = `unix:${socketPath}`;
    } else {
      const host = (values.host as string | undefined) ?? '127.0.0.1';
      await app.listen({ host, port: port(values.port) });
      const a = app.server.address() as AddressInfo;
      where = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
    }
  } catch (err) {
    await app.close();
    await service.close();
    throw err;
  }
  logger.info({ listen: where, stateDir, tokenFile: paths.token, tokenCreated: created }, 'kniv service listening');
  process.stderr.write(`kniv: serving ${where}  (API docs: /docs; bearer token in ${paths.token}${created ? ', new' : ''})\n`);
  await untilSignal();
  await app.close();
  await service.close();
  return 0;
}

const startTable: OptionsTable = {
  port: serveTable.port!,
  kernel: { type: 'string', value: '6.1|6.12', help: 'appliance kernel when running in the VM (default 6.1)' },
  mode: { type: 'string', value: 'native|vm', help: 'where to run (default: native if kni.ko can be loaded here, or KNIV_MODE)' },
  'state-dir': serveTable['state-dir']!,
};

/** Can this host load kni.ko itself? Root, module loading on, headers for the running kernel. */
function canRunNatively(): boolean {
  if (existsSync('/sys/module/kni')) return true;
  if (process.getuid?.() !== 0) return false;
  try {
    if (readFileSync('/proc/sys/kernel/modules_disabled', 'utf8').trim() !== '0') return false;
  } catch {
    return false;
  }
  return existsSync(join('/lib/modules', release(), 'build'));
}

/** Build kni.ko for the running kernel and load it, unless it is loaded already. */
async function loadNativeModule(): Promise<void> {
  if (existsSync('/sys/module/kni')) return;
  const out = join(projectRoot, 'build', 'module', release());
  await execa('bash', ['-c', 'mkdir -p "$1" && for f in "$2"/module/*.c "$2"/module/*.h "$2"/module/Kbuild; do ln -sfn "$f" "$1/"; done', '_', out, projectRoot]);
  await execa('make', ['-C', join('/lib/modules', release(), 'build'), `M=${out}`, 'modules'], { stdout: 'ignore' });
  await execa('insmod', [join(out, 'kni.ko')]);
}

/**
 * Where VMs started inside the appliance VM keep their run directories. Not
 * in the state directory: that is the host's, shared over 9p, on which qemu
 * cannot bind its QMP and console sockets. A tmpfs loses nothing that matters:
 * those VMs are qemu processes inside the appliance and end with it.
 */
export const APPLIANCE_RUN_DIR = '/run/kniv/vms';

/** The service's command line inside the appliance VM: what `kniv start` runs there. */
export function applianceServeCommand(port: number, stateDir: string): string[] {
  return [
    'node',
    knivCommand,
    'serve',
    '--host',
    '0.0.0.0',
    '--port',
    String(port),
    '--state-dir',
    stateDir,
    '--run-dir',
    APPLIANCE_RUN_DIR,
  ];
}

async function waitForHealth(url: string, signal: AbortSignal): Promise<boolean> {
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

export async function start(argv: string[]): Promise<number> {
  const { values } = parse(argv, startTable, false);
  if (values.help) {
    process.stdout.write(helpText('kniv start [options]', 'Runs the kniv appliance and prints its URL. Ctrl-C stops it.', startTable));
    return 0;
  }
  const p = port(values.port);
  // The state directory is the host's in both modes: the appliance VM mounts it read-write.
  const stateDir = resolve((values['state-dir'] as string | undefined) ?? defaultStateDir());
  const paths = prepareStateDir(stateDir);
  const mode = (values.mode as string | undefined) ?? process.env.KNIV_MODE ?? (canRunNatively() ? 'native' : 'vm');
  const url = `http://127.0.0.1:${p}/`;
  if (mode === 'native') {
    await loadNativeModule();
    process.stdout.write(`kniv is running natively on ${release()}: ${url}  (bearer token in ${paths.token})\n`);
    return serve(['--port', String(p), '--state-dir', stateDir]);
  }
  if (mode !== 'vm') throw new UsageError(`--mode must be native or vm, not ${JSON.stringify(mode)}`);
  const kernel = KernelLabelSchema.safeParse(values.kernel ?? '6.1');
  if (!kernel.success) throw new UsageError(`--kernel must be 6.1 or 6.12, not ${JSON.stringify(values.kernel)}`);

  process.stdout.write(`kniv: this host cannot load kni.ko; starting the appliance VM (kernel ${kernel.data})...\n`);
  // The benchmark's guest image, built here where build/ is writable (the VM
  // sees it read-only); a failure only means the VM builds it on first use.
  try {
    guestImage(kernelFor(kernel.data));
  } catch (err) {
    process.stderr.write(`kniv: the benchmark's guest image was not built: ${(err as Error).message}\n`);
  }
  const ready = new AbortController();
  void waitForHealth(`${url}health`, ready.signal).then((up) => {
    if (up) process.stdout.write(`kniv is running inside the appliance VM: ${url}  (bearer token in ${paths.token}; Ctrl-C stops it)\n`);
  });
  const result = await runInterruptible({
    kernel: kernel.data,
    command: applianceServeCommand(p, stateDir),
    cwd: projectRoot,
    stateDir,
    forwards: [{ hostAddress: '127.0.0.1', hostPort: p, guestPort: p }],
  });
  ready.abort();
  if (result.aborted) {
    process.stdout.write('kniv: stopped\n');
    return 0;
  }
  reportFailure(result);
  return result.exitCode;
}
