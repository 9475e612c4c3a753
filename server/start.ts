// `kniv serve` runs the service on this system; `kniv start` runs it where
// kni.ko can be loaded: natively on a host that can load modules, otherwise
// inside the appliance VM with the port forwarded.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { execa } from 'execa';
import { helpText, intOption, parse, UsageError, type OptionsTable } from '../bin/cli.js';
import { reportFailure, runInterruptible } from '../qemu/vm-cli.js';
import { KernelLabelSchema } from '../qemu/kernels.js';
import { projectRoot } from '../qemu/paths.js';
import { buildApp } from './app.js';
import { systemFacts } from './system.js';

const DEFAULT_PORT = 8080;

const serveTable: OptionsTable = {
  host: { type: 'string', value: 'ADDRESS', help: 'address to listen on (default 127.0.0.1)' },
  port: { type: 'string', value: 'PORT', help: `TCP port (default ${DEFAULT_PORT}, or KNIV_PORT)` },
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

export async function serve(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveTable, false);
  if (values.help) {
    process.stdout.write(helpText('kniv serve [options]', 'Runs the kniv service on this system.', serveTable));
    return 0;
  }
  const app = buildApp({ logger: { level: process.env.KNIV_LOG_LEVEL ?? 'info' } }, { system: systemFacts });
  const host = (values.host as string | undefined) ?? '127.0.0.1';
  await app.listen({ host, port: port(values.port) });
  await untilSignal();
  await app.close();
  return 0;
}

const startTable: OptionsTable = {
  port: serveTable.port!,
  kernel: { type: 'string', value: '6.1|6.12', help: 'appliance kernel when running in the VM (default 6.1)' },
  mode: { type: 'string', value: 'native|vm', help: 'where to run (default: native if kni.ko can be loaded here, or KNIV_MODE)' },
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
  const mode = (values.mode as string | undefined) ?? process.env.KNIV_MODE ?? (canRunNatively() ? 'native' : 'vm');
  const url = `http://127.0.0.1:${p}/`;
  if (mode === 'native') {
    await loadNativeModule();
    process.stdout.write(`kniv is running natively on ${release()}: ${url}\n`);
    return serve(['--port', String(p)]);
  }
  if (mode !== 'vm') throw new UsageError(`--mode must be native or vm, not ${JSON.stringify(mode)}`);
  const kernel = KernelLabelSchema.safeParse(values.kernel ?? '6.1');
  if (!kernel.success) throw new UsageError(`--kernel must be 6.1 or 6.12, not ${JSON.stringify(values.kernel)}`);

  process.stdout.write(`kniv: this host cannot load kni.ko; starting the appliance VM (kernel ${kernel.data})...\n`);
  const ready = new AbortController();
  void waitForHealth(`${url}health`, ready.signal).then((up) => {
    if (up) process.stdout.write(`kniv is running inside the appliance VM: ${url}  (Ctrl-C stops it)\n`);
  });
  const result = await runInterruptible({
    kernel: kernel.data,
    command: ['node', join(projectRoot, 'dist', 'bin', 'kniv.js'), 'serve', '--host', '0.0.0.0', '--port', String(p)],
    cwd: projectRoot,
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
