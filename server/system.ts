// Facts about the system the service runs on: the kernel, kni.ko, KVM, vhost-net.
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { z } from 'zod';
import { moduleInfo } from '../native/index.js';
import { kvmUsable } from '../qemu/accel.js';

export const KniStatusSchema = z.object({
  loaded: z.boolean(),
  abiVersion: z.number().int().optional(),
  kthreadMode: z.enum(['single', 'multiple']).optional(),
  error: z.string().optional().describe('why /dev/kni could not be queried although the module is loaded'),
});

export const SystemFactsSchema = z.object({
  kernel: z.string(),
  kni: KniStatusSchema,
  kvm: z.boolean().describe('KVM usable: /dev/kvm opens and the CPU has vmx or svm'),
  vhostNet: z.boolean(),
});
export type SystemFacts = z.infer<typeof SystemFactsSchema>;

export function kniStatus(): z.infer<typeof KniStatusSchema> {
  if (!existsSync('/sys/module/kni')) return { loaded: false };
  try {
    return { loaded: true, ...moduleInfo() };
  } catch (err) {
    return { loaded: true, error: (err as Error).message };
  }
}

export function systemFacts(): SystemFacts {
  return {
    kernel: release(),
    kni: kniStatus(),
    kvm: kvmUsable(),
    vhostNet: existsSync('/dev/vhost-net'),
  };
}
