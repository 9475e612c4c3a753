// Guest↔host throughput runs: one at a time, followed through progress events,
// kept in the store as history.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { BenchRow, Store } from './db.js';
import type { BenchInterface, BenchRunner } from './drivers.js';
import { ApiError, notFound } from './errors.js';
import type { EventBus } from './events.js';
import type { Interfaces } from './interfaces.js';
import { LIMITS, type BenchCreate, type Benchmark, type BenchProgress } from './schemas.js';

export class Benchmarks {
  private running: { id: string; abort: AbortController; done: Promise<void> } | undefined;
  private starting = false;

  constructor(
    private readonly store: Store,
    private readonly runner: BenchRunner,
    private readonly interfaces: Interfaces,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  list(): Benchmark[] {
    return this.store.listBenchmarks(LIMITS.benchmarksKept).map(view);
  }

  get(id: string): Benchmark {
    const row = this.store.getBenchmark(id);
    if (!row) throw notFound('benchmark', id);
    return view(row);
  }

  /**
   * Starts a run and answers at once with it. With `interface`, that interface
   * is lent to the run (reserved, its socket enabled) before anything is
   * recorded, so that a busy or unsuitable interface is refused here.
   */
  async start(spec: BenchCreate): Promise<Benchmark> {
    if (this.running) throw new ApiError('benchmark_running', `benchmark ${this.running.id} is still running`, { id: this.running.id });
    if (this.starting) throw new ApiError('benchmark_running', 'another benchmark is starting');
    const a = this.runner.available();
    if (!a.ok) throw new ApiError('benchmark_unavailable', a.reason);
    const id = randomUUID();
    const holder = `benchmark ${id}`;
    let iface: BenchInterface | undefined;
    let giveBack = async () => {};
    this.starting = true;
    try {
      if (spec.interface !== undefined) {
        const i = this.interfaces.get(spec.interface);
        if (i.state !== 'active') throw new ApiError('invalid_state', `interface ${spec.interface} is ${i.state}`, { state: i.state });
        if (i.socket.vm) throw new ApiError('interface_in_use', `interface ${spec.interface} backs VM ${i.socket.vm}`, { vm: i.socket.vm });
        const kniPath = spec.paths?.find((p) => p.startsWith('kni'));
        const vnetHdr = kniPath ? kniPath.endsWith('-on') : i.vnetHdr === true;
        const lent = await this.interfaces.lend(spec.interface, holder, vnetHdr);
        const name = spec.interface;
        iface = { name, fd: lent.fd, vnetHdr, peerDevice: lent.peerDevice };
        giveBack = () => this.interfaces.giveBack(name, holder, lent.fd, lent.vnetHdrBefore);
      }
    } finally {
      this.starting = false;
    }
    let row: BenchRow;
    try {
      row = this.store.insertBenchmark(id, spec, LIMITS.benchmarksKept);
    } catch (err) {
      await giveBack();
      throw err;
    }
    const abort = new AbortController();
    this.log.info({ benchmark: id, spec }, 'benchmark started');
    this.bus.publish('benchmark.started', { id, spec });
    let lastSaved = 0;
    const onProgress = (p: BenchProgress) => {
      this.bus.publish('benchmark.progress', { id, progress: p });
      // The store keeps the latest progress for pollers, at most once a second.
      if (Date.now() - lastSaved >= 1000 || p.fraction >= 1) {
        lastSaved = Date.now();
        this.store.setBenchmarkProgress(id, p);
      }
    };
    const done = this.runner
      .run(spec, onProgress, abort.signal, iface)
      .then(
        (result) => {
          this.store.finishBenchmark(id, { result });
          this.log.info({ benchmark: id, result }, 'benchmark finished');
          this.bus.publish('benchmark.finished', { id, state: 'succeeded', result });
        },
        (err: Error) => {
          this.store.finishBenchmark(id, { error: err.message });
          this.log.warn({ benchmark: id, err }, 'benchmark failed');
          this.bus.publish('benchmark.finished', { id, state: 'failed', error: err.message });
        },
      )
      .finally(async () => {
        await giveBack().catch((err: unknown) => this.log.warn({ benchmark: id, err }, 'giving the interface back failed'));
        this.running = undefined;
      });
    this.running = { id, abort, done };
    return view(row);
  }

  /** Waits for the running benchmark, if any. */
  async settled(): Promise<void> {
    await this.running?.done;
  }

  async close(): Promise<void> {
    this.running?.abort.abort();
    await this.settled();
  }
}

function view(row: BenchRow): Benchmark {
  return { ...row };
}
