// The service's core, independent of HTTP: the store, the resources, the event
// bus, and the reconciliation that runs when it starts.
import type { Logger } from 'pino';
import { z } from 'zod';
import { Benchmarks } from './benchmarks.js';
import { Store } from './db.js';
import type { BenchRunner, KniDriver, SystemProbe, VmRunner } from './drivers.js';
import { EventBus } from './events.js';
import { Interfaces } from './interfaces.js';
import { KeyedMutex } from './mutex.js';
import { prepareStateDir, type StatePaths } from './state-dir.js';
import { Vms } from './vms.js';

export const ReconcileReportSchema = z.object({
  at: z.string(),
  interfaces: z.object({
    recreated: z.array(z.string()),
    failed: z.array(z.object({ name: z.string(), error: z.string() })),
  }),
  vms: z.object({
    adopted: z.array(z.string()),
    died: z.array(z.string()),
    degraded: z.array(z.string()).describe('adopted VMs whose NICs lost their interface; stop and start them'),
  }),
  benchmarks: z.object({ failed: z.array(z.string()).describe('runs the previous service left unfinished') }),
});
export type ReconcileReport = z.infer<typeof ReconcileReportSchema>;

export interface ServiceDrivers {
  kni: KniDriver;
  vms: VmRunner;
  bench: BenchRunner;
  probe: () => SystemProbe;
}

export interface ServiceConfig {
  stateDir: string;
  logger: Logger;
  /** How often the event stream carries counters while someone listens. */
  countersIntervalMs?: number;
  /** Where VM run directories go (QMP and console sockets, pid file, console log); default <state dir>/vms. */
  runDir?: string;
}

export class Service {
  readonly bus = new EventBus();
  readonly mutex = new KeyedMutex();
  readonly interfaces: Interfaces;
  readonly vms: Vms;
  readonly benchmarks: Benchmarks;
  reconcileReport: ReconcileReport | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly paths: StatePaths,
    readonly store: Store,
    readonly drivers: ServiceDrivers,
    readonly log: Logger,
    countersIntervalMs: number,
  ) {
    this.interfaces = new Interfaces(store, drivers.kni, this.bus, this.mutex, log.child({ component: 'interfaces' }));
    this.vms = new Vms(store, drivers.vms, this.interfaces, this.bus, this.mutex, paths.vms, log.child({ component: 'vms' }));
    this.benchmarks = new Benchmarks(store, drivers.bench, this.interfaces, this.bus, log.child({ component: 'benchmarks' }));
    this.ticker = setInterval(() => this.publishCounters(), countersIntervalMs);
    this.ticker.unref();
  }

  /** Opens the state directory and the database, then reconciles. */
  static async open(config: ServiceConfig, drivers: ServiceDrivers): Promise<Service> {
    const paths = { ...prepareStateDir(config.stateDir), ...(config.runDir ? { vms: config.runDir } : {}) };
    const store = new Store(paths.db);
    const service = new Service(paths, store, drivers, config.logger, config.countersIntervalMs ?? 5000);
    try {
      await service.reconcile();
    } catch (err) {
      await service.close();
      throw err;
    }
    return service;
  }

  /**
   * Brings the running system to the stored desired state: interfaces are
   * re-created (they died with the previous service's /dev/kni), VMs still
   * running are re-adopted, dead ones are marked, unfinished benchmarks fail.
   */
  async reconcile(): Promise<ReconcileReport> {
    const interfaces = await this.interfaces.recreateAll();
    const vms = await this.vms.adoptAll();
    const failed = this.store.failOrphanedBenchmarks('the service stopped while it ran');
    const report: ReconcileReport = { at: new Date().toISOString(), interfaces, vms, benchmarks: { failed } };
    this.reconcileReport = report;
    this.log.info({ reconcile: report }, 'reconciled');
    this.bus.publish('service.reconciled', report);
    return report;
  }

  private publishCounters(): void {
    if (this.bus.subscribers === 0) return;
    const interfaces: Record<string, unknown> = {};
    for (const name of this.interfaces.names()) interfaces[name] = this.interfaces.counters(name);
    const vms = Object.fromEntries(this.vms.states());
    this.bus.publish('counters', { interfaces, vms });
  }

  /** Stops managing: interfaces go (with /dev/kni), VMs keep running, the store closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    await this.benchmarks.close();
    await this.vms.close();
    this.interfaces.close();
    this.store.close();
  }
}
