// lib/event-types.js is not a file: the service writes it from server/events.ts
// (server/routes/ui.ts), so the dashboard listens for exactly the event types
// the service sends.
export const EVENT_TYPES: readonly import('../../events.js').EventType[];
