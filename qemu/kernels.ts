// The appliance kernels unpacked by scripts/setup.sh, as listed in build/kernels.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { projectRoot } from './paths.js';

export const KernelLabelSchema = z.enum(['6.1', '6.12']);
export type KernelLabel = z.infer<typeof KernelLabelSchema>;

export const KernelSchema = z.object({
  release: z.string(),
  root: z.string(),
  vmlinuz: z.string(),
  kdir: z.string(),
  modules: z.string(),
});
export type Kernel = z.infer<typeof KernelSchema> & { label: KernelLabel };

const KernelsFileSchema = z.record(z.string(), KernelSchema);

export function loadKernels(): Map<KernelLabel, Kernel> {
  const file = join(projectRoot, 'build', 'kernels.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing: run scripts/setup.sh first`);
  }
  const parsed = KernelsFileSchema.parse(JSON.parse(text));
  const out = new Map<KernelLabel, Kernel>();
  for (const [label, k] of Object.entries(parsed)) {
    const l = KernelLabelSchema.parse(label);
    out.set(l, { ...k, label: l });
  }
  return out;
}

export function kernel(label: KernelLabel): Kernel {
  const k = loadKernels().get(label);
  if (!k) throw new Error(`kernel ${label} is not set up: run scripts/setup.sh`);
  return k;
}

/** Where setup.sh builds kni.ko for a kernel release. */
export function kniModulePath(release: string): string {
  return join(projectRoot, 'build', 'module', release, 'kni.ko');
}
