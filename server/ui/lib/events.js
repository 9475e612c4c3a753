// @ts-check
// The service's event stream (/v1/events, server-sent events) with reconnection.
//
// EventSource reconnects by itself after a network error, but gives up for good
// when the service answers with an error status (401/403 after a token change,
// 503 while it shuts down). Then this class opens a new one after a back-off.
// A stream that stays silent longer than the counters interval allows (counters
// come every 5 s while someone listens) is taken as dead and replaced too.

import { EVENT_TYPES } from './event-types.js';

/** @typedef {import('./types.js').KnivEvent} KnivEvent */
/** @typedef {'connecting' | 'live' | 'reconnecting'} StreamState */


const SILENCE_MS = 20_000;

export class EventStream {
  /**
   * @param {string} token
   * @param {{ onEvent: (e: KnivEvent) => void, onState: (s: StreamState) => void, onGiveUp: () => void }} handlers
   *   onGiveUp: the stream closed for good; the owner checks why (token? service down?) and may call open() again.
   */
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    /** @type {EventSource | undefined} */
    this.source = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.watchdog = undefined;
    this.closed = false;
  }

  open() {
    this.closed = false;
    this.source?.close();
    this.handlers.onState('connecting');
    const es = new EventSource(`/v1/events?token=${encodeURIComponent(this.token)}`);
    this.source = es;
    es.onopen = () => {
      this.handlers.onState('live');
      this.feed();
    };
    es.onerror = () => {
      if (this.source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        this.stop();
        this.handlers.onGiveUp();
      } else {
        this.handlers.onState('reconnecting');
      }
    };
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (m) => {
        this.feed();
        /** @type {KnivEvent} */
        let event;
        try {
          event = JSON.parse(/** @type {MessageEvent<string>} */ (m).data);
        } catch {
          return;
        }
        this.handlers.onEvent(event);
      });
    }
  }

  /** Something arrived: the stream is alive. */
  feed() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (this.closed) return;
      this.stop();
      this.handlers.onGiveUp();
    }, SILENCE_MS);
  }

  stop() {
    clearTimeout(this.watchdog);
    this.source?.close();
    this.source = undefined;
  }

  close() {
    this.closed = true;
    this.stop();
  }
}
