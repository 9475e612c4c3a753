// Whether qemu can use KVM here. /dev/kvm existing is not enough: some
// sandboxes expose a /dev/kvm that creates VMs which never run. A usable host
// also shows hardware virtualisation (vmx or svm) in /proc/cpuinfo.
// KNIV_ACCEL=kvm|tcg overrides the probe.
import { accessSync, constants, readFileSync } from 'node:fs';

export function kvmUsable(): boolean {
  const forced = process.env.KNIV_ACCEL;
  if (forced === 'kvm') return true;
  if (forced === 'tcg') return false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The CPU model qemu emulates under TCG, for the appliance VM and the guests
 * alike. Not `max`: under TCG inside TCG it exposes every instruction the
 * emulator knows (AVX2, BMI, 5-level paging, ...) to the inner qemu and its
 * guest, and the inner qemu's code generator then emits them for the outer
 * one to emulate (docs/guests.md, "Nested TCG and the CPU model", has what was
 * measured). Nehalem is x86-64-v2, which TCG emulates without a warning.
 * KNIV_TCG_CPU overrides it (a qemu -cpu value), for measuring another model.
 */
export const DEFAULT_TCG_CPU = 'Nehalem';

export function tcgCpuModel(): string {
  const forced = process.env.KNIV_TCG_CPU;
  if (forced === undefined || forced === '') return DEFAULT_TCG_CPU;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*(,[+-]?[A-Za-z0-9_.-]+(=[A-Za-z0-9_.-]+)?)*$/.test(forced)) {
    throw new Error(`KNIV_TCG_CPU must be a qemu -cpu value such as Nehalem or max,-avx2, not ${JSON.stringify(forced)}`);
  }
  return forced;
}
