// `kniv start` (what `npm start` runs after set-up): here the host cannot load
// modules, so it runs the service inside the appliance VM with the port forwarded.
import test from 'ava';
import { execa } from 'execa';
import { kernel } from '../../qemu/kernels.js';
import { alive, childrenNamed, kniv, waitFor } from '../lib/util.js';

test('kniv start serves /health from the appliance VM on the host, and Ctrl-C stops it', async (t) => {
  const port = 18000 + (process.pid % 1000);
  const child = execa('node', [kniv, 'start', '--port', String(port)], { reject: false, stdin: 'ignore', all: true });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.all.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /kniv is running inside the appliance VM: (http:\S+)/.exec(output);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error(`kniv start exited early:\n${output}`)));
  });
  t.is(url, `http://127.0.0.1:${port}/`);

  const res = await fetch(`${url}health`);
  t.is(res.status, 200);
  const body = (await res.json()) as { kernel: string; kni: { loaded: boolean; abiVersion: number } };
  t.is(body.kernel, kernel('6.1').release);
  t.true(body.kni.loaded);
  t.is(body.kni.abiVersion, 3);

  const qemu = childrenNamed(child.pid!, 'qemu-system');
  t.is(qemu.length, 1);
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 0, r.all);
  t.regex(r.all ?? '', /kniv: stopped/);
  t.true(await waitFor(() => !alive(qemu[0]!), 10_000));
  await t.throwsAsync(fetch(`${url}health`, { signal: AbortSignal.timeout(2000) }));
});
