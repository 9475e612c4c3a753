// Serialises work per resource: operations on one key run one after another,
// operations on different keys run in parallel.
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs fn once every earlier holder of each key has finished. Keys are taken in sorted order, so two callers never deadlock. */
  async run<T>(keys: string | readonly string[], fn: () => Promise<T> | T): Promise<T> {
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort();
    const releases: (() => void)[] = [];
    try {
      for (const key of sorted) releases.push(await this.acquire(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  private async acquire(key: string): Promise<() => void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    return () => {
      release();
      // The last holder leaves no entry behind.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** Keys held or waited for: for tests. */
  get size(): number {
    return this.tails.size;
  }
}
