// The real BenchRunner: the kni-vhost guest↔host benchmark. That benchmark is
// not written yet (it comes with the qemu guests); until then benchmarks are
// unavailable (503 benchmark_unavailable) rather than faked.
import type { Availability, BenchRunner } from '../drivers.js';
import type { BenchResult } from '../schemas.js';

export class KniVhostBench implements BenchRunner {
  available(): Availability {
    return { ok: false, reason: 'the kni-vhost benchmark is not part of this build yet' };
  }

  async run(): Promise<BenchResult> {
    throw new Error('the kni-vhost benchmark is not part of this build yet');
  }
}
