// /v1/events: server-sent events. State changes as they happen, counters every
// few seconds while someone listens, a heartbeat comment so that proxies and
// clients can tell a quiet stream from a dead one.
import { z } from 'zod';
import { EVENT_TYPES, type KnivEvent } from '../events.js';
import type { Routes } from '../route.js';
import type { Service } from '../service.js';

export const EventsQuerySchema = z
  .object({
    types: z
      .string()
      .optional()
      .transform((s) => (s ? s.split(',') : undefined))
      .pipe(z.array(z.enum(EVENT_TYPES)).optional())
      .describe('comma-separated event types to receive (default: all)'),
    token: z.string().optional().describe('the bearer token, for browsers whose EventSource cannot send headers'),
  })
  .strict();

/** Registers the stream; the returned function ends every open stream (server shutdown). */
export function eventRoutes(r: Routes, service: Service, heartbeatMs: number): () => void {
  const open = new Set<() => void>();
  r.add({
    method: 'GET',
    url: '/v1/events',
    tag: 'events',
    summary: 'Server-sent events: state changes, counters, heartbeats; Last-Event-ID resumes',
    description: `Event types: ${EVENT_TYPES.join(', ')}. Each event's data is JSON {id, type, time, data}.`,
    query: EventsQuerySchema,
    produces: 'text/event-stream',
    handler: async ({ query, raw: req }, reply) => {
      const wanted = query.types ? new Set<string>(query.types) : undefined;
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (e: KnivEvent) => {
        if (wanted && !wanted.has(e.type)) return;
        res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      };
      res.write(': kniv events\n\n');
      const last = Number(req.headers['last-event-id']);
      if (Number.isInteger(last) && last >= 0) for (const e of service.bus.since(last)) send(e);
      const unsubscribe = service.bus.subscribe(send);
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
      const end = () => {
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(end);
        res.end();
      };
      open.add(end);
      req.raw.once('close', end);
      res.once('close', end);
    },
  });
  return () => {
    for (const end of [...open]) end();
  };
}
