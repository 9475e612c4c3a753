// @ts-check
// What the dashboard knows: the resources as the API last listed them, and the
// per-interface rates computed from successive `counters` events.

/** @typedef {import('./types.js').Interface} Interface */
/** @typedef {import('./types.js').Counters} Counters */
/** @typedef {import('./types.js').Vm} Vm */
/** @typedef {import('./types.js').Benchmark} Benchmark */
/** @typedef {import('./types.js').BenchProgress} BenchProgress */
/** @typedef {import('./types.js').SystemInfo} SystemInfo */
/** @typedef {import('./events.js').StreamState} StreamState */
/** @typedef {'system' | 'interfaces' | 'vms' | 'benchmarks' | 'rates' | 'stream'} Topic */

/**
 * Rates of one interface over one counters interval. rx is what the KNI netdev
 * received (port → interface), tx what it sent; drops count every drop the
 * netdev and the data plane report, as a total since the interface was created.
 * @typedef {{ t: number, rxPps: number, txPps: number, rxBps: number, txBps: number, drops: number }} RateSample
 */

/** Samples kept per interface: 10 minutes at the service's 5 s interval. */
export const HISTORY = 120;

/** @param {Counters} c */
export function totalDrops(c) {
  const d = c.dataPlane;
  return c.netdev.rxDropped + c.netdev.txDropped + d.dropNoBuffer + d.dropRxFull + d.dropTooBig + d.dropPortError;
}

export class Store extends EventTarget {
  constructor() {
    super();
    /** @type {SystemInfo | undefined} */
    this.system = undefined;
    /** @type {Interface[]} */
    this.interfaces = [];
    /** @type {Vm[]} */
    this.vms = [];
    /** @type {Benchmark[]} */
    this.benchmarks = [];
    /** @type {Map<string, RateSample[]>} */
    this.history = new Map();
    /** @type {Map<string, { t: number, c: Counters }>} */
    this.last = new Map();
    /** Live progress of running benchmarks, from benchmark.progress events. @type {Map<string, BenchProgress>} */
    this.progress = new Map();
    /** @type {StreamState | 'off'} */
    this.stream = 'off';
  }

  /** @param {...Topic} topics */
  changed(...topics) {
    this.dispatchEvent(new CustomEvent('change', { detail: new Set(topics) }));
  }

  /**
   * @param {(topics: Set<Topic>) => void} fn
   * @returns {() => void} unsubscribe
   */
  subscribe(fn) {
    /** @param {Event} e */
    const listener = (e) => fn(/** @type {CustomEvent<Set<Topic>>} */ (e).detail);
    this.addEventListener('change', listener);
    return () => this.removeEventListener('change', listener);
  }

  /** @param {string} name */
  latest(name) {
    const h = this.history.get(name);
    return h?.[h.length - 1];
  }

  /**
   * One `counters` event: each interface's counters at the event's time (the
   * service's clock, so intervals are exact whatever this browser's clock says).
   * @param {string} time
   * @param {Record<string, Counters | null>} interfaces
   */
  addCounters(time, interfaces) {
    const t = Date.parse(time);
    for (const [name, c] of Object.entries(interfaces)) {
      if (!c) continue;
      const prev = this.last.get(name);
      this.last.set(name, { t, c });
      if (!prev || t <= prev.t) continue;
      const dt = (t - prev.t) / 1000;
      const n = c.netdev;
      const p = prev.c.netdev;
      // A counter that went down means the interface was re-created: start over.
      if (n.rxPackets < p.rxPackets || n.txPackets < p.txPackets) {
        this.history.delete(name);
        continue;
      }
      const sample = {
        t,
        rxPps: (n.rxPackets - p.rxPackets) / dt,
        txPps: (n.txPackets - p.txPackets) / dt,
        rxBps: ((n.rxBytes - p.rxBytes) * 8) / dt,
        txBps: ((n.txBytes - p.txBytes) * 8) / dt,
        drops: totalDrops(c),
      };
      const h = this.history.get(name) ?? [];
      h.push(sample);
      if (h.length > HISTORY) h.shift();
      this.history.set(name, h);
    }
    for (const name of [...this.history.keys()]) if (!(name in interfaces)) this.history.delete(name);
    for (const name of [...this.last.keys()]) if (!(name in interfaces)) this.last.delete(name);
    // The listed interfaces' counters follow the events too.
    for (const i of this.interfaces) {
      const c = interfaces[i.name];
      if (c) i.counters = c;
    }
    this.changed('rates');
  }
}
