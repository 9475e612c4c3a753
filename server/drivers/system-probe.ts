// Facts for /v1/system, read from the host each time they are asked for.
import { moduleParameters } from '../../sysfs-tools/kni-info.js';
import type { SystemProbe } from '../drivers.js';
import { systemFacts } from '../system.js';

export function systemProbe(qemuVersion: string | null): () => SystemProbe {
  return () => {
    const f = systemFacts();
    return {
      ...f,
      kni: { ...f.kni, parameters: f.kni.loaded ? moduleParameters() : {} },
      qemu: { available: qemuVersion !== null, version: qemuVersion },
    };
  };
}
