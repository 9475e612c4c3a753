// QMP, the QEMU Machine Protocol: framing separate from the socket, and a
// client over a unix socket.
//
// The wire (qemu docs/interop/qmp-spec): one JSON object per line (qemu ends
// them with CRLF). The server speaks first with a greeting {"QMP": {version,
// capabilities}}; the client must send qmp_capabilities before anything else.
// Each command may carry an "id" that its answer echoes: {"return": v} or
// {"error": {"class", "desc"}}. Asynchronous events {"event", "data",
// "timestamp"} may arrive at any time, between or before answers.
import { EventEmitter, on } from 'node:events';
import { createConnection, type Socket } from 'node:net';

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

export type QmpMessage =
  | { kind: 'greeting'; greeting: QmpGreeting }
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; errorClass: string; desc: string }
  | ({ kind: 'event' } & QmpEvent)
  /** A line that is not a QMP message; framing carries on with the next line. */
  | { kind: 'invalid'; line: string; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Classify one parsed JSON value as a QMP message. */
function classify(v: unknown, line: string): QmpMessage {
  if (!isObject(v)) return { kind: 'invalid', line, reason: 'not a JSON object' };
  if (isObject(v.QMP)) {
    const q = v.QMP as Record<string, unknown>;
    return { kind: 'greeting', greeting: { version: q.version as QmpGreeting['version'], capabilities: Array.isArray(q.capabilities) ? (q.capabilities as string[]) : [] } };
  }
  if ('return' in v) return { kind: 'return', id: v.id, value: v.return };
  if (isObject(v.error)) {
    return { kind: 'error', id: v.id, errorClass: String(v.error.class ?? 'GenericError'), desc: String(v.error.desc ?? '') };
  }
  if (typeof v.event === 'string') {
    const ts = isObject(v.timestamp) ? v.timestamp : {};
    return {
      kind: 'event',
      event: v.event,
      data: isObject(v.data) ? v.data : {},
      timestamp: { seconds: Number(ts.seconds ?? 0), microseconds: Number(ts.microseconds ?? 0) },
    };
  }
  return { kind: 'invalid', line, reason: 'a JSON object that is no greeting, answer or event' };
}

/**
 * Turns a byte stream into QMP messages. Bytes may arrive split or merged in
 * any way; a line longer than `maxLineBytes` is reported and skipped rather
 * than buffered without bound.
 */
export class QmpParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = false;

  constructor(private readonly maxLineBytes = 16 << 20) {}

  feed(chunk: Uint8Array): QmpMessage[] {
    const out: QmpMessage[] = [];
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a)) {
      const piece = buf.subarray(0, nl);
      buf = buf.subarray(nl + 1);
      if (this.discarding) {
        this.discarding = false;
        this.reset();
        continue;
      }
      const line = this.pendingBytes === 0 ? piece : Buffer.concat([...this.pending, piece]);
      this.reset();
      if (line.length > this.maxLineBytes) {
        out.push(this.tooLong(line.length));
        continue;
      }
      const m = this.line(line);
      if (m) out.push(m);
    }
    if (buf.length > 0 && !this.discarding) {
      this.pending.push(Buffer.from(buf));
      this.pendingBytes += buf.length;
      if (this.pendingBytes > this.maxLineBytes) {
        out.push(this.tooLong(this.pendingBytes));
        this.reset();
        this.discarding = true;
      }
    }
    return out;
  }

  /** The stream ended: a last line without a newline still counts. */
  end(): QmpMessage[] {
    const rest = this.discarding ? Buffer.alloc(0) : Buffer.concat(this.pending);
    this.reset();
    this.discarding = false;
    const m = rest.length > 0 ? this.line(rest) : undefined;
    return m ? [m] : [];
  }

  private reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  private tooLong(n: number): QmpMessage {
    return { kind: 'invalid', line: '', reason: `a line of more than ${this.maxLineBytes} bytes (${n} so far) was skipped` };
  }

  private line(bytes: Buffer): QmpMessage | undefined {
    const line = bytes.toString('utf8').trim();
    if (line === '') return undefined;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      return { kind: 'invalid', line, reason: `not JSON: ${(err as Error).message}` };
    }
    return classify(v, line);
  }
}

/** qemu answered a command with an error. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

/** The connection went away (or was never usable) before an answer came. */
export class QmpDisconnectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpDisconnectedError';
  }
}

export class QmpTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpTimeoutError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface QmpConnectOptions {
  /** Give up connecting and negotiating after this long (default 10 s). */
  timeoutMs?: number;
  /** Keep retrying while the socket does not exist or refuses, until the timeout (for a qemu that is starting). */
  retry?: boolean;
  /** Stop trying (e.g. the qemu being waited for has exited). */
  signal?: AbortSignal;
}

export interface QmpClientEvents {
  event: [QmpEvent];
  /** A line from qemu that is not QMP; the connection carries on. */
  invalid: [Extract<QmpMessage, { kind: 'invalid' }>];
  /** The connection is gone; `error` says why if it was not closed on purpose. */
  close: [Error | undefined];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A QMP client over a unix socket. Commands are matched to answers by id;
 * events are emitted as 'event' and can be iterated with events(). When the
 * connection drops, every command still waiting is rejected with a
 * QmpDisconnectedError that names it.
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private closedError: Error | undefined;
  private isClosed = false;
  /** Resolves when the connection is gone, whoever closed it. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
    readonly greeting: QmpGreeting,
    /** The parser that read the greeting, with whatever it still holds. */
    private readonly parser: QmpParser,
    leftover: QmpMessage[],
  ) {
    super();
    this.closed = new Promise((r) => (this.markClosed = r));
    socket.on('data', (d: Buffer) => this.dispatch(this.parser.feed(d)));
    socket.on('error', (err) => {
      this.closedError ??= err;
    });
    socket.on('close', () => this.onClose());
    this.dispatch(leftover);
  }

  /** Connect to qemu's QMP socket and negotiate capabilities. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (opts.signal?.aborted) throw new QmpDisconnectedError(`gave up connecting to QMP at ${path}: ${String(opts.signal.reason ?? 'aborted')}`);
      try {
        return await QmpClient.connectOnce(path, deadline, opts.signal);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const retriable = code === 'ENOENT' || code === 'ECONNREFUSED';
        if (!opts.retry || !retriable || Date.now() >= deadline) {
          if (retriable) throw new QmpDisconnectedError(`cannot connect to QMP at ${path}: ${(err as Error).message}`);
          throw err;
        }
        await sleep(50);
      }
    }
  }

  private static connectOnce(path: string, deadline: number, signal: AbortSignal | undefined): Promise<QmpClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const parser = new QmpParser();
      const fail = (err: Error) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new QmpTimeoutError(`no QMP greeting from ${path} within the time allowed (is another client connected to it?)`)),
        Math.max(0, deadline - Date.now()),
      );
      const onAbort = () => fail(new QmpDisconnectedError(`gave up connecting to QMP at ${path}: ${String(signal?.reason ?? 'aborted')}`));
      signal?.addEventListener('abort', onAbort, { once: true });
      const onError = (err: Error) => fail(err);
      const onClose = () => fail(new QmpDisconnectedError(`QMP at ${path} closed the connection before its greeting`));
      const onData = (d: Buffer) => {
        const messages = parser.feed(d);
        const first = messages.shift();
        if (first === undefined) return;
        if (first.kind !== 'greeting') {
          fail(new QmpDisconnectedError(`${path} does not speak QMP: its first message was not a greeting`));
          return;
        }
        cleanup();
        const client = new QmpClient(socket, path, first.greeting, parser, messages);
        client
          .execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) })
          .then(() => resolve(client), (err: Error) => {
            client.close();
            reject(err);
          });
      };
      function cleanup() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        socket.off('close', onClose);
        socket.off('data', onData);
      }
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.on('data', onData);
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /**
   * Run a command and resolve with its "return" value. Rejects with QmpError
   * when qemu answers with an error, QmpTimeoutError after `timeoutMs`
   * (default 30 s; a late answer is then ignored), QmpDisconnectedError when
   * the connection drops first.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.isClosed) {
      return Promise.reject(new QmpDisconnectedError(`QMP connection to ${this.path} is closed; cannot run "${command}"`));
    }
    const id = `kniv-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(`QMP command "${command}" got no answer from ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`);
    });
  }

  /** Events from now on, until the connection closes (or `signal` aborts). */
  async *events(signal?: AbortSignal): AsyncGenerator<QmpEvent> {
    if (this.isClosed) return;
    try {
      for await (const [e] of on(this, 'event', { close: ['close'], ...(signal ? { signal } : {}) })) yield e as QmpEvent;
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  }

  /** The next event named `name` (and matching `match`), or a timeout/disconnect error. */
  waitForEvent(name: string, opts: { timeoutMs?: number; match?: (e: QmpEvent) => boolean } = {}): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const done = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      const onEvent = (e: QmpEvent) => {
        if (e.event === name && (opts.match?.(e) ?? true)) {
          done();
          resolve(e);
        }
      };
      const onClose = () => {
        done();
        reject(new QmpDisconnectedError(`QMP connection to ${this.path} closed while waiting for event ${name}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new QmpTimeoutError(`no QMP event ${name} from ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      if (this.isClosed) {
        onClose();
        return;
      }
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** Close the connection; commands still waiting are rejected. qemu keeps running. */
  close(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }

  private dispatch(messages: QmpMessage[]): void {
    for (const m of messages) {
      switch (m.kind) {
        case 'return':
        case 'error': {
          const p = typeof m.id === 'string' ? this.pending.get(m.id) : undefined;
          if (!p) break; // an answer to a command that already timed out
          this.pending.delete(m.id as string);
          clearTimeout(p.timer);
          if (m.kind === 'return') p.resolve(m.value);
          else p.reject(new QmpError(p.command, m.errorClass, m.desc));
          break;
        }
        case 'event':
          this.emit('event', { event: m.event, data: m.data, timestamp: m.timestamp });
          break;
        case 'invalid':
          this.emit('invalid', m);
          break;
        case 'greeting':
          this.emit('invalid', { kind: 'invalid', line: JSON.stringify({ QMP: m.greeting }), reason: 'a second greeting' });
          break;
      }
    }
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.dispatch(this.parser.end());
    const why = this.closedError ? `: ${this.closedError.message}` : '';
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new QmpDisconnectedError(`QMP connection to ${this.path} closed while "${p.command}" was waiting for its answer${why}`));
    }
    this.emit('close', this.closedError);
    this.markClosed();
  }
}
