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
