// `kniv serve` as a real process, for the VM tests that drive the service
// over HTTP (service.test.ts, service-guest.test.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { alive, kniv } from './util.js';

export const sh = (cmd: string) => execa('sh', ['-c', cmd], { all: true });
export const nsExec = (ns: string, cmd: string) => execa('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { all: true, reject: false });
export const netdev = (name: string) => existsSync(`/sys/class/net/${name}`);

export class Served {
  output = '';
  url = '';
  constructor(readonly child: ResultPromise, readonly stateDir: string) {}

  get token(): string {
    return readFileSync(join(this.stateDir, 'token'), 'utf8').trim();
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
    const res = await fetch(`${this.url}${path.slice(1)}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  }

  /** Signals the service and returns its exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | undefined> {
    this.child.kill(signal);
    return (await this.child).exitCode;
  }
}

/**
 * Starts `kniv serve` on `port` and waits until it listens. Files that run side
 * by side (the VM suite's guest phase) use ports from different ranges.
 */
export async function serve(t: ExecutionContext, stateDir: string, port: number): Promise<Served> {
  const child = execa('node', [kniv, 'serve', '--port', String(port), '--state-dir', stateDir], {
    reject: false,
    all: true,
    stdin: 'ignore',
    env: { KNIV_LOG_LEVEL: 'info' },
  });
  const s = new Served(child, stateDir);
  t.teardown(async () => {
    if (alive(child.pid!)) await s.stop('SIGKILL');
  });
  s.url = await new Promise<string>((resolve, reject) => {
    child.all!.on('data', (d: Buffer) => {
      s.output += d.toString();
      const m = /kniv: serving (http:\S+)/.exec(s.output);
      if (m?.[1]) resolve(m[1]);
    });
    void child.then(() => reject(new Error(`kniv serve exited:\n${s.output}`)));
  });
  return s;
}

export function stateDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** netns B with 10.99.1.2 on kvsp1, the far end of the veth kvsp0. */
export async function peer(t: ExecutionContext) {
  await sh('ip netns add B && ip link add kvsp0 type veth peer name kvsp1 && ip link set kvsp1 netns B && ip link set kvsp0 up');
  t.teardown(() => sh('ip netns del B; ip link del kvsp0').catch(() => undefined));
  // The peer keeps its offloads: the AF_PACKET port completes checksums and cuts super-frames.
  await sh('ip -n B addr add 10.99.1.2/24 dev kvsp1 && ip -n B link set kvsp1 up');
}
