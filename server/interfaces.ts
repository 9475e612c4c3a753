// KNI interfaces as resources: desired state in the store, live state in the
// driver, every change under the interface's lock and announced as an event.
import type { Logger } from 'pino';
import type { Store } from './db.js';
import { DriverError, type KniDriver, type KniHandle } from './drivers.js';
import { ApiError, invalidState, notFound } from './errors.js';
import type { EventBus } from './events.js';
import type { KeyedMutex } from './mutex.js';
import { LIMITS, type Counters, type Interface, type InterfaceCreate, type InterfacePatch } from './schemas.js';

export const ifaceKey = (name: string) => `iface:${name}`;

interface Live {
  handle: KniHandle | undefined;
  /** Why the interface could not be (re-)created. */
  error: string | null;
  /** The VM this interface backs, and whether its socket is enabled for it. */
  holder: { vm: string; socketEnabled: boolean } | undefined;
}

export interface InterfaceReport {
  recreated: string[];
  failed: { name: string; error: string }[];
}

/** Maps a driver failure on create to the API's answer. */
function createError(spec: InterfaceCreate, err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: string; message?: string };
  if (e.code === 'EEXIST') return new ApiError('name_in_use', `a network interface named ${JSON.stringify(spec.name)} already exists on this host`);
  if (e.code === 'ENODEV' && err instanceof DriverError) {
    return new ApiError('invalid_request', `body.port.ifname: ${e.message}`, { issues: [{ field: 'body.port.ifname', message: e.message }] });
  }
  if (e.code === 'ENOTSUP') return new ApiError('unsupported', `${spec.name}: ${e.message}`);
  return new ApiError('operation_failed', `creating ${spec.name} failed: ${e.message ?? String(err)}`);
}

export const maxMtuOf = (spec: InterfaceCreate) => spec.maxMtu ?? Math.max(spec.mtu, 1500);

export class Interfaces {
  private readonly live = new Map<string, Live>();

  constructor(
    private readonly store: Store,
    private readonly driver: KniDriver,
    private readonly bus: EventBus,
    private readonly mutex: KeyedMutex,
    private readonly log: Logger,
  ) {}

  list(): Interface[] {
    return this.store.listInterfaces().map((row) => this.view(row.name)!);
  }

  get(name: string): Interface {
    const v = this.view(name);
    if (!v) throw notFound('interface', name);
    return v;
  }

  names(): string[] {
    return [...this.live.keys()];
  }

  counters(name: string): Counters | null {
    const h = this.live.get(name)?.handle;
    if (!h) return null;
    try {
      return h.counters();
    } catch {
      return null;
    }
  }

  private view(name: string): Interface | undefined {
    const row = this.store.getInterface(name);
    if (!row) return undefined;
    const live = this.live.get(name);
    let link = null;
    let counters = null;
    let error = live?.error ?? (live ? null : 'not created');
    if (live?.handle) {
      try {
        link = live.handle.link();
        counters = live.handle.counters();
      } catch (err) {
        error = `reading its state failed: ${(err as Error).message}`;
      }
    }
    return {
      name,
      state: live?.handle && link ? 'active' : 'failed',
      error,
      port: row.spec.port,
      kthreadCpu: row.spec.kthreadCpu ?? null,
      maxMtu: maxMtuOf(row.spec),
      ifindex: link?.ifindex ?? null,
      mac: link?.mac ?? row.spec.mac ?? null,
      mtu: link?.mtu ?? row.spec.mtu,
      up: link?.up ?? null,
      carrier: link?.carrier ?? null,
      vnetHdr: link ? link.vnetHdr : (row.spec.vnetHdr ?? null),
      socket: { attached: live?.holder?.socketEnabled ?? false, vm: live?.holder?.vm ?? null },
      counters,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }

  private requireAvailable(): void {
    const a = this.driver.available();
    if (!a.ok) throw new ApiError('module_unavailable', a.reason);
  }

  /** Brings a handle to the desired state of its spec (link up, carrier on). */
  private async realise(spec: InterfaceCreate): Promise<KniHandle> {
    const handle = await this.driver.create(spec);
    try {
      if (spec.up) {
        await handle.setUp(true);
        handle.setCarrier(true);
      }
    } catch (err) {
      handle.release();
      throw err;
    }
    return handle;
  }

  async create(spec: InterfaceCreate): Promise<Interface> {
    return this.mutex.run(ifaceKey(spec.name), async () => {
      if (this.store.getInterface(spec.name)) throw new ApiError('name_in_use', `interface ${JSON.stringify(spec.name)} exists`);
      if (this.store.countInterfaces() >= LIMITS.interfaces) {
        throw new ApiError('limit_reached', `this service manages at most ${LIMITS.interfaces} interfaces`);
      }
      this.requireAvailable();
      let handle: KniHandle;
      try {
        handle = await this.realise(spec);
      } catch (err) {
        throw createError(spec, err);
      }
      // The address the kernel chose is part of the desired state: a re-created
      // interface keeps it.
      const stored: InterfaceCreate = { ...spec, mac: handle.link().mac, maxMtu: maxMtuOf(spec) };
      try {
        this.store.insertInterface(stored);
      } catch (err) {
        handle.release();
        throw err;
      }
      this.live.set(spec.name, { handle, error: null, holder: undefined });
      const view = this.view(spec.name)!;
      this.log.info({ interface: spec.name, port: spec.port }, 'interface created');
      this.bus.publish('interface.created', { interface: view });
      return view;
    });
  }

  async patch(name: string, patch: InterfacePatch): Promise<Interface> {
    return this.mutex.run(ifaceKey(name), async () => {
      const row = this.store.getInterface(name);
      if (!row) throw notFound('interface', name);
      const live = this.live.get(name);
      const h = live?.handle;
      if (!h) throw invalidState('interface', name, 'failed', 'changing it', ['active']);
      if (patch.vnetHdr !== undefined && live.holder) {
        throw new ApiError('interface_in_use', `vnetHdr can change only while no VM holds the socket; VM ${live.holder.vm} does`, {
          vm: live.holder.vm,
        });
      }
      const link = h.link();
      if (patch.vnetHdr !== undefined && link.vnetHdr === null) {
        throw new ApiError('unsupported', 'this kni.ko has no KNI socket, so no vnet_hdr setting');
      }
      if (patch.mtu !== undefined && patch.mtu > maxMtuOf(row.spec)) {
        const message = `at most ${maxMtuOf(row.spec)}, the maxMtu the interface was created with`;
        throw new ApiError('invalid_request', `body.mtu: ${message}`, { issues: [{ field: 'body.mtu', message }] });
      }
      const upAfter = patch.up ?? link.up;
      if (patch.carrier !== undefined && !upAfter) {
        throw invalidState('interface', name, 'down', 'setting carrier', ['up']);
      }
      const spec: InterfaceCreate = { ...row.spec };
      const step = async (what: string, fn: () => Promise<void> | void) => {
        try {
          await fn();
        } catch (err) {
          throw new ApiError('operation_failed', `${name}: setting ${what} failed: ${(err as Error).message}`);
        }
      };
      // Up first so that carrier can follow; down last so that the other
      // changes are made while the data plane still answers.
      if (patch.up === true && !link.up) await step('up', () => h.setUp(true));
      if (patch.mtu !== undefined && patch.mtu !== link.mtu) await step('mtu', () => h.setMtu(patch.mtu!));
      if (patch.mac !== undefined && patch.mac !== link.mac) await step('mac', () => h.setMac(patch.mac!));
      if (patch.vnetHdr !== undefined) await step('vnetHdr', () => h.setVnetHdr(patch.vnetHdr!));
      if (patch.carrier !== undefined) await step('carrier', () => h.setCarrier(patch.carrier!));
      if (patch.up === false && link.up) await step('up', () => h.setUp(false));
      if (patch.mtu !== undefined) spec.mtu = patch.mtu;
      if (patch.mac !== undefined) spec.mac = patch.mac;
      if (patch.up !== undefined) spec.up = patch.up;
      if (patch.vnetHdr !== undefined) spec.vnetHdr = patch.vnetHdr;
      this.store.updateInterface(spec);
      const view = this.view(name)!;
      this.log.info({ interface: name, change: patch }, 'interface changed');
      this.bus.publish('interface.changed', { interface: view, change: patch });
      return view;
    });
  }

  async delete(name: string): Promise<void> {
    return this.mutex.run(ifaceKey(name), async () => {
      if (!this.store.getInterface(name)) throw notFound('interface', name);
      const live = this.live.get(name);
      if (live?.holder) {
        throw new ApiError('interface_in_use', `interface ${name} backs VM ${live.holder.vm}; stop the VM first`, { vm: live.holder.vm });
      }
      live?.handle?.release();
      this.live.delete(name);
      this.store.deleteInterface(name);
      this.log.info({ interface: name }, 'interface deleted');
      this.bus.publish('interface.deleted', { name });
    });
  }

  /**
   * Wires an interface to a VM: checks that it is active and free, and with
   * `enable` turns its socket on and returns the fd. The caller holds the
   * interface's lock.
   */
  attach(name: string, vm: string, enable: boolean): number | undefined {
    const live = this.live.get(name);
    if (!this.store.getInterface(name) || !live) throw notFound('interface', name);
    if (!live.handle) throw invalidState('interface', name, 'failed', `starting VM ${vm}`, ['active']);
    if (live.holder && live.holder.vm !== vm) {
      throw new ApiError('interface_in_use', `interface ${name} already backs VM ${live.holder.vm}`, { interface: name, vm: live.holder.vm });
    }
    let fd: number | undefined;
    if (enable) {
      try {
        fd = live.handle.enableSocket();
      } catch (err) {
        const e = err as { code?: string; message: string };
        if (e.code === 'EBUSY') throw new ApiError('interface_in_use', `the socket of ${name} is already enabled`, { interface: name });
        if (e.code === 'ENOTSUP' || e.code === 'ENOENT') throw new ApiError('unsupported', `${name}: ${e.message}`);
        throw new ApiError('operation_failed', `${name}: enabling its socket failed: ${e.message}`);
      }
    }
    live.holder = { vm, socketEnabled: enable };
    this.log.info({ interface: name, vm, socket: enable }, 'interface wired to VM');
    return fd;
  }

  /**
   * Lends an interface to a benchmark for one run: reserved as a VM would hold
   * it (`socket.vm` names the benchmark), VNET_HDR set as the run needs, its
   * socket enabled. The peer goes on its TAP port, so other ports are refused.
   * giveBack() undoes all three.
   */
  async lend(name: string, holder: string, vnetHdr: boolean): Promise<{ fd: number; peerDevice: string; vnetHdrBefore: boolean }> {
    return this.mutex.run(ifaceKey(name), async () => {
      const row = this.store.getInterface(name);
      const live = this.live.get(name);
      if (!row || !live) throw notFound('interface', name);
      const h = live.handle;
      if (!h) throw invalidState('interface', name, 'failed', 'benchmarking it', ['active']);
      if (live.holder) throw new ApiError('interface_in_use', `interface ${name} backs VM ${live.holder.vm}`, { vm: live.holder.vm });
      if (row.spec.port.kind !== 'tap') {
        throw new ApiError('invalid_state', `interface ${name} forwards to a ${row.spec.port.kind} port; the benchmark puts its peer on a TAP port`, {
          port: row.spec.port.kind,
          allowed: ['tap'],
        });
      }
      const before = h.link().vnetHdr;
      if (before === null) throw new ApiError('unsupported', 'this kni.ko has no KNI socket');
      try {
        if (before !== vnetHdr) h.setVnetHdr(vnetHdr);
      } catch (err) {
        throw new ApiError('operation_failed', `${name}: setting vnetHdr for the benchmark failed: ${(err as Error).message}`);
      }
      let fd: number;
      try {
        fd = h.enableSocket();
      } catch (err) {
        if (before !== vnetHdr) h.setVnetHdr(before);
        const e = err as { code?: string; message: string };
        if (e.code === 'EBUSY') throw new ApiError('interface_in_use', `the socket of ${name} is already enabled`, { interface: name });
        throw new ApiError('operation_failed', `${name}: enabling its socket failed: ${e.message}`);
      }
      live.holder = { vm: holder, socketEnabled: true };
      this.log.info({ interface: name, holder, vnetHdr }, 'interface lent to a benchmark');
      return { fd, peerDevice: row.spec.port.ifname, vnetHdrBefore: before };
    });
  }

  /** Ends a lend(): the socket off and closed here, VNET_HDR as it was, the interface free. */
  async giveBack(name: string, holder: string, fd: number, vnetHdrBefore: boolean): Promise<void> {
    return this.mutex.run(ifaceKey(name), async () => {
      this.driver.closeFd(fd);
      const live = this.live.get(name);
      if (!live || live.holder?.vm !== holder) return;
      live.holder = undefined;
      if (!live.handle) return;
      try {
        live.handle.disableSocket();
        if (live.handle.link().vnetHdr !== vnetHdrBefore) live.handle.setVnetHdr(vnetHdrBefore);
      } catch (err) {
        this.log.warn({ interface: name, err }, 'restoring the interface after a benchmark failed');
      }
      this.log.info({ interface: name, holder }, 'interface given back by a benchmark');
    });
  }

  /** Unwires an interface from a VM; turns its socket off. The caller holds the interface's lock. */
  detach(name: string, vm: string): void {
    const live = this.live.get(name);
    if (!live?.holder || live.holder.vm !== vm) return;
    if (live.holder.socketEnabled && live.handle) {
      try {
        live.handle.disableSocket();
      } catch (err) {
        this.log.warn({ interface: name, err }, 'disabling the socket failed');
      }
    }
    live.holder = undefined;
    this.log.info({ interface: name, vm }, 'interface unwired from VM');
  }

  closeFd(fd: number): void {
    this.driver.closeFd(fd);
  }

  /**
   * Re-creates every interface of the desired state. KNI interfaces live as
   * long as the /dev/kni descriptor of the process that created them, so
   * after a service restart none of them exists any more.
   */
  async recreateAll(): Promise<InterfaceReport> {
    const report: InterfaceReport = { recreated: [], failed: [] };
    const available = this.driver.available();
    for (const row of this.store.listInterfaces()) {
      await this.mutex.run(ifaceKey(row.name), async () => {
        try {
          if (!available.ok) throw new Error(available.reason);
          const handle = await this.realise(row.spec);
          this.live.set(row.name, { handle, error: null, holder: undefined });
          report.recreated.push(row.name);
          this.log.info({ interface: row.name }, 'interface re-created');
          this.bus.publish('interface.created', { interface: this.view(row.name), reason: 'reconcile' });
        } catch (err) {
          const error = `re-creating it failed: ${(err as Error).message}`;
          this.live.set(row.name, { handle: undefined, error, holder: undefined });
          report.failed.push({ name: row.name, error });
          this.log.error({ interface: row.name, err }, 'interface could not be re-created');
          this.bus.publish('interface.failed', { name: row.name, error });
        }
      });
    }
    return report;
  }

  /** Marks an interface as held by a VM that survived a restart (its socket is the old interface's). */
  markHeld(name: string, vm: string): void {
    const live = this.live.get(name);
    if (live) live.holder = { vm, socketEnabled: false };
  }

  /** Service shutdown: data planes stop, netdevs go with /dev/kni. Desired state stays. */
  close(): void {
    for (const [name, live] of this.live) {
      try {
        live.handle?.release();
      } catch (err) {
        this.log.warn({ interface: name, err }, 'releasing the interface failed');
      }
    }
    this.live.clear();
    this.driver.close();
  }
}
