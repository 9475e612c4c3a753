// `kniv info`: what the loaded kni.ko is, from /sys/module/kni and /dev/kni.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { helpText, parse, type OptionsTable } from '../bin/cli.js';
import { kniStatus } from '../server/system.js';

const table: OptionsTable = {
  json: { type: 'boolean', help: 'print JSON' },
};

export function moduleParameters(sysModule = '/sys/module/kni'): Record<string, string> {
  const dir = join(sysModule, 'parameters');
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) out[name] = readFileSync(join(dir, name), 'utf8').trim();
  return out;
}

export async function info(argv: string[]): Promise<number> {
  const { values } = parse(argv, table, false);
  if (values.help) {
    process.stdout.write(helpText('kniv info [--json]', 'Shows whether kni.ko is loaded, its ABI and its parameters.', table));
    return 0;
  }
  const status = kniStatus();
  const report = { ...status, parameters: status.loaded ? moduleParameters() : {} };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else if (!status.loaded) {
    process.stdout.write('kni.ko is not loaded\n');
  } else {
    process.stdout.write(`kni.ko loaded${status.abiVersion !== undefined ? `, ABI ${status.abiVersion}` : ''}\n`);
    if (status.error) process.stdout.write(`  /dev/kni: ${status.error}\n`);
    for (const [k, v] of Object.entries(report.parameters)) process.stdout.write(`  ${k}=${v}\n`);
  }
  return status.loaded && !status.error ? 0 : 1;
}
