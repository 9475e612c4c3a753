// The service's desired state and benchmark history in SQLite (better-sqlite3).
//
// Crash safety: WAL with synchronous=FULL, so a committed change survives a
// crash or power loss; every change that touches more than one row is one
// transaction. locking_mode=EXCLUSIVE is set before WAL is entered, which
// keeps the WAL index in process memory instead of a shared -shm mapping: the
// database then also works on a 9p share (the appliance VM's state directory),
// and a second service on the same state directory fails at once instead of
// fighting over it.
import { chmodSync, closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { BenchCreate, BenchProgress, BenchResult, InterfaceCreate, VmCreate, VmState } from './schemas.js';

/** Each entry upgrades the schema by one version (PRAGMA user_version). Never edit a released entry. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE interfaces (
     name TEXT PRIMARY KEY,
     spec TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE vms (
     name TEXT PRIMARY KEY,
     spec TEXT NOT NULL,
     state TEXT NOT NULL,
     error TEXT,
     pid INTEGER,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     started_at TEXT
   );
   CREATE TABLE benchmarks (
     id TEXT PRIMARY KEY,
     spec TEXT NOT NULL,
     state TEXT NOT NULL,
     progress TEXT,
     result TEXT,
     error TEXT,
     created_at TEXT NOT NULL,
     finished_at TEXT
   );
   CREATE INDEX benchmarks_created ON benchmarks (created_at);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface InterfaceRow {
  name: string;
  spec: InterfaceCreate;
  createdAt: string;
  updatedAt: string;
}

export interface VmRow {
  name: string;
  spec: VmCreate;
  state: VmState;
  error: string | null;
  pid: number | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
}

export interface BenchRow {
  id: string;
  spec: BenchCreate;
  state: 'running' | 'succeeded' | 'failed';
  progress: BenchProgress | null;
  result: BenchResult | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

const now = () => new Date().toISOString();
const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const unjson = <T>(s: unknown): T | null => (typeof s === 'string' ? (JSON.parse(s) as T) : null);

type Raw = Record<string, unknown>;

export class Store {
  private readonly db: Database.Database;

  constructor(path: string) {
    // The database and its WAL (which SQLite creates with the database's mode) are the service's alone.
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
    this.db = new Database(path, { timeout: 1000 });
    try {
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (err) {
      this.db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new Error(`${path} is in use by another kniv service`, { cause: err });
      }
      throw err;
    }
  }

  private migrate(): void {
    // BEGIN EXCLUSIVE takes the database lock now: with locking_mode=EXCLUSIVE
    // it is then held until close.
    this.db.exec('BEGIN EXCLUSIVE; COMMIT');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`the database has schema version ${version}, newer than this kniv (${MIGRATIONS.length})`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // --- interfaces ---

  private ifaceRow = (r: Raw): InterfaceRow => ({
    name: r.name as string,
    spec: unjson<InterfaceCreate>(r.spec)!,
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
  });

  listInterfaces(): InterfaceRow[] {
    return (this.db.prepare('SELECT * FROM interfaces ORDER BY name').all() as Raw[]).map(this.ifaceRow);
  }

  getInterface(name: string): InterfaceRow | undefined {
    const r = this.db.prepare('SELECT * FROM interfaces WHERE name = ?').get(name) as Raw | undefined;
    return r && this.ifaceRow(r);
  }

  countInterfaces(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM interfaces').get() as { n: number }).n;
  }

  insertInterface(spec: InterfaceCreate): InterfaceRow {
    const t = now();
    this.db.prepare('INSERT INTO interfaces (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)').run(spec.name, json(spec), t, t);
    return { name: spec.name, spec, createdAt: t, updatedAt: t };
  }

  updateInterface(spec: InterfaceCreate): void {
    this.db.prepare('UPDATE interfaces SET spec = ?, updated_at = ? WHERE name = ?').run(json(spec), now(), spec.name);
  }

  deleteInterface(name: string): void {
    this.db.prepare('DELETE FROM interfaces WHERE name = ?').run(name);
  }

  // --- VMs ---

  private vmRow = (r: Raw): VmRow => ({
    name: r.name as string,
    spec: unjson<VmCreate>(r.spec)!,
    state: r.state as VmState,
    error: (r.error as string | null) ?? null,
    pid: (r.pid as number | null) ?? null,
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
    startedAt: (r.started_at as string | null) ?? null,
  });

  listVms(): VmRow[] {
    return (this.db.prepare('SELECT * FROM vms ORDER BY name').all() as Raw[]).map(this.vmRow);
  }

  getVm(name: string): VmRow | undefined {
    const r = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(name) as Raw | undefined;
    return r && this.vmRow(r);
  }

  countVms(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM vms').get() as { n: number }).n;
  }

  insertVm(spec: VmCreate): VmRow {
    const t = now();
    this.db
      .prepare("INSERT INTO vms (name, spec, state, created_at, updated_at) VALUES (?, ?, 'defined', ?, ?)")
      .run(spec.name, json(spec), t, t);
    return { name: spec.name, spec, state: 'defined', error: null, pid: null, createdAt: t, updatedAt: t, startedAt: null };
  }

  /** Records a state change; the fields not given keep their values. */
  setVmState(name: string, state: VmState, fields: { error?: string | null; pid?: number | null; startedAt?: string | null } = {}): VmRow {
    const cur = this.getVm(name);
    if (!cur) throw new Error(`no VM ${name}`);
    const next: VmRow = {
      ...cur,
      state,
      error: fields.error === undefined ? cur.error : fields.error,
      pid: fields.pid === undefined ? cur.pid : fields.pid,
      startedAt: fields.startedAt === undefined ? cur.startedAt : fields.startedAt,
      updatedAt: now(),
    };
    this.db
      .prepare('UPDATE vms SET state = ?, error = ?, pid = ?, started_at = ?, updated_at = ? WHERE name = ?')
      .run(next.state, next.error, next.pid, next.startedAt, next.updatedAt, name);
    return next;
  }

  deleteVm(name: string): void {
    this.db.prepare('DELETE FROM vms WHERE name = ?').run(name);
  }

  // --- benchmarks ---

  private benchRow = (r: Raw): BenchRow => ({
    id: r.id as string,
    spec: unjson<BenchCreate>(r.spec)!,
    state: r.state as BenchRow['state'],
    progress: unjson<BenchProgress>(r.progress),
    result: unjson<BenchResult>(r.result),
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at as string,
    finishedAt: (r.finished_at as string | null) ?? null,
  });

  listBenchmarks(limit: number): BenchRow[] {
    return (this.db.prepare('SELECT * FROM benchmarks ORDER BY created_at DESC, id LIMIT ?').all(limit) as Raw[]).map(this.benchRow);
  }

  getBenchmark(id: string): BenchRow | undefined {
    const r = this.db.prepare('SELECT * FROM benchmarks WHERE id = ?').get(id) as Raw | undefined;
    return r && this.benchRow(r);
  }

  /** Inserts a run and trims the history to `keep` runs, in one transaction. */
  insertBenchmark(id: string, spec: BenchCreate, keep: number): BenchRow {
    const t = now();
    this.transaction(() => {
      this.db.prepare("INSERT INTO benchmarks (id, spec, state, created_at) VALUES (?, ?, 'running', ?)").run(id, json(spec), t);
      this.db
        .prepare("DELETE FROM benchmarks WHERE state != 'running' AND id NOT IN (SELECT id FROM benchmarks ORDER BY created_at DESC, id LIMIT ?)")
        .run(keep);
    });
    return { id, spec, state: 'running', progress: null, result: null, error: null, createdAt: t, finishedAt: null };
  }

  setBenchmarkProgress(id: string, progress: BenchProgress): void {
    this.db.prepare('UPDATE benchmarks SET progress = ? WHERE id = ?').run(json(progress), id);
  }

  finishBenchmark(id: string, outcome: { result: BenchResult } | { error: string }): void {
    const ok = 'result' in outcome;
    this.db
      .prepare('UPDATE benchmarks SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ?')
      .run(ok ? 'succeeded' : 'failed', ok ? json(outcome.result) : null, ok ? null : outcome.error, now(), id);
  }

  /** Runs still marked running belong to a previous service that stopped; they failed. */
  failOrphanedBenchmarks(reason: string): string[] {
    const ids = (this.db.prepare("SELECT id FROM benchmarks WHERE state = 'running'").all() as { id: string }[]).map((r) => r.id);
    for (const id of ids) this.finishBenchmark(id, { error: reason });
    return ids;
  }
}
