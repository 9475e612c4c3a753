// The build as CI and users get it: set-up is idempotent, kni.ko builds
// warning-free and checkpatch-clean against both appliance kernels.
import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { loadKernels, kniModulePath } from '../../qemu/kernels.js';
import { projectRoot } from '../../qemu/paths.js';

const moduleDir = join(projectRoot, 'module');
const sources = readdirSync(moduleDir).filter((f) => /\.[ch]$/.test(f));

test('a second set-up run finds everything done and changes nothing', async (t) => {
  const r = await execa('bash', ['scripts/setup.sh'], { cwd: projectRoot, all: true });
  const out = r.all ?? '';
  t.regex(out, /Debian packages\n {4}all \d+ present/);
  t.is((out.match(/already unpacked in /g) ?? []).length, 2);
  t.regex(out, /node_modules matches package-lock.json/);
  t.is((out.match(/kni\.ko for .* up to date/g) ?? []).length, 2);
  t.regex(out, /addon up to date/);
  t.regex(out, /TypeScript up to date/);
  t.notRegex(out, /downloading|installing|built |compiled/);
});

for (const [label, k] of loadKernels()) {
  test(`kni.ko builds with W=1 and no warning against ${label} (${k.release})`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kniv-build-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    for (const f of [...sources, 'Kbuild']) cpSync(join(moduleDir, f), join(dir, f));
    const r = await execa('make', ['-C', k.kdir, `M=${dir}`, 'W=1', 'modules'], { all: true, reject: false });
    t.is(r.exitCode, 0, r.all);
    t.notRegex(r.all ?? '', /warning:/i);
  });

  test(`modinfo of the built kni.ko for ${label} matches its kernel`, async (t) => {
    const r = await execa('modinfo', [kniModulePath(k.release)]);
    t.regex(r.stdout, new RegExp(`^vermagic: +${k.release.replace(/[+.]/g, '\\$&')} SMP`, 'm'));
    t.regex(r.stdout, /^license: +GPL$/m);
    t.regex(r.stdout, /^parm: +kthread_mode:.*'single'.*'multiple'/m);
  });
}

test('checkpatch --strict finds nothing in module/', async (t) => {
  const tools = JSON.parse(readFileSync(join(projectRoot, 'build', 'tools.json'), 'utf8')) as { checkpatch: string };
  const r = await execa('perl', [tools.checkpatch, '--no-tree', '--strict', '--terse', '--show-types', '-f', ...sources.map((f) => join(moduleDir, f))], { reject: false, all: true });
  t.is(r.exitCode, 0, r.all);
  t.notRegex(r.all ?? '', /(ERROR|WARNING|CHECK):/);
});

test('dkms.conf names the module and builds against the kernel DKMS asks for', (t) => {
  const conf = readFileSync(join(moduleDir, 'dkms.conf'), 'utf8');
  t.regex(conf, /^BUILT_MODULE_NAME\[0\]="kni"$/m);
  t.regex(conf, /^MAKE\[0\]=".*KDIR=\$\{kernel_source_dir\}"$/m);
  const pkgVersion = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
  t.regex(conf, new RegExp(`^PACKAGE_VERSION="${pkgVersion.replace(/\./g, '\\.')}"$`, 'm'));
});
