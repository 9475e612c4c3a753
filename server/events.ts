// State changes and periodic counters, as typed events with a sequence number.
// The SSE route replays from Last-Event-ID out of a bounded history.
import { EventEmitter } from 'node:events';
import { z } from 'zod';

export const EVENT_TYPES = [
  'interface.created',
  'interface.changed',
  'interface.deleted',
  'interface.failed',
  'vm.created',
  'vm.state',
  'vm.deleted',
  'benchmark.started',
  'benchmark.progress',
  'benchmark.finished',
  'counters',
  'service.reconciled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const EventSchema = z.object({
  id: z.number().int().describe('increasing; send it back as Last-Event-ID to resume'),
  type: z.enum(EVENT_TYPES),
  time: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type KnivEvent = z.infer<typeof EventSchema>;

export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly history: KnivEvent[] = [];
  private seq = 0;

  constructor(private readonly historySize = 512) {
    // Every SSE client is one listener.
    this.emitter.setMaxListeners(0);
  }

  publish(type: EventType, data: Record<string, unknown>): KnivEvent {
    const event: KnivEvent = { id: ++this.seq, type, time: new Date().toISOString(), data };
    // Counters come every few seconds and say nothing worth replaying.
    if (type !== 'counters') {
      this.history.push(event);
      if (this.history.length > this.historySize) this.history.shift();
    }
    this.emitter.emit('event', event);
    return event;
  }

  /** Events after `lastId` still in the history. */
  since(lastId: number): KnivEvent[] {
    return this.history.filter((e) => e.id > lastId);
  }

  subscribe(fn: (e: KnivEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  get subscribers(): number {
    return this.emitter.listenerCount('event');
  }
}
