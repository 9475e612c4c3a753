import test from 'ava';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cpioArchive } from '../../qemu/cpio.js';

const entries = [
  { type: 'dir', path: 'bin' },
  { type: 'file', path: 'bin/hello', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { type: 'file', path: 'odd', data: Buffer.from('abc') },
  { type: 'file', path: 'empty', data: Buffer.alloc(0) },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'chardev', path: 'console', major: 5, minor: 1 },
] as const;

test('GNU cpio lists and extracts what the writer produced', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kniv-cpio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const archive = join(dir, 'a.cpio');
  writeFileSync(archive, cpioArchive([...entries]));

  const names = await execa('cpio', ['-it', '--quiet', '-F', archive]);
  t.deepEqual(names.stdout.split('\n'), ['bin', 'bin/hello', 'odd', 'empty', 'bin/sh', 'console']);
  const list = await execa('cpio', ['-itv', '--quiet', '-F', archive]);
  const lines = list.stdout.split('\n');
  t.true(lines[4]!.endsWith('bin/sh -> busybox'));
  t.true(lines[1]!.startsWith('-rwxr-xr-x'));
  t.true(lines[5]!.startsWith('crw-------'));

  const out = join(dir, 'x');
  await execa('sh', ['-c', `mkdir -p ${out} && cd ${out} && cpio -id --quiet --nonmatching console < ${archive}`]);
  t.is(readFileSync(join(out, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.is(readFileSync(join(out, 'odd'), 'utf8'), 'abc');
  t.is(readFileSync(join(out, 'empty'), 'utf8'), '');
  t.is(readlinkSync(join(out, 'bin/sh')), 'busybox');
});

test('identical inputs give identical archives, padded to 4 bytes', (t) => {
  const a = cpioArchive([...entries]);
  t.deepEqual(a, cpioArchive([...entries]));
  t.is(a.length % 4, 0);
});

test('paths that climb out of the archive are refused', (t) => {
  t.throws(() => cpioArchive([{ type: 'dir', path: '../etc' }]), { message: /bad path/ });
  t.throws(() => cpioArchive([{ type: 'dir', path: '/' }]), { message: /bad path/ });
});
