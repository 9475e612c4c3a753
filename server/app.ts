// The kniv service's HTTP face, built by a function so that tests can inject()
// into it: auth, one error handler, one log line per request, the routes.
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ApiError } from './errors.js';
import { RequestHistogram } from './metrics.js';
import { openApiDocument, Routes } from './route.js';
import { benchmarkRoutes } from './routes/benchmarks.js';
import { docsRoutes } from './routes/docs.js';
import { eventRoutes } from './routes/events.js';
import { interfaceRoutes } from './routes/interfaces.js';
import { systemRoutes } from './routes/system.js';
import { UI_DIR, uiRoutes } from './routes/ui.js';
import { vmRoutes } from './routes/vms.js';
import type { Service } from './service.js';
import { SystemFactsSchema, type SystemFacts } from './system.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without the bearer token. */
    public?: boolean;
  }
}

export const HealthSchema = SystemFactsSchema.extend({ status: z.literal('ok') });
export type Health = z.infer<typeof HealthSchema>;

export interface AppConfig {
  /** The bearer token every route but the public ones requires. */
  token: string;
  /** A pino logger (redacting authorization), or false for none. */
  logger?: Logger | false;
  version?: string;
  /** Request body limit in bytes. */
  bodyLimit?: number;
  /** Interval of the event stream's heartbeat comments. */
  heartbeatMs?: number;
  /** The dashboard's files (default server/ui of this package), or false for no dashboard. */
  uiDir?: string | false;
}

export interface AppDeps {
  system: () => SystemFacts;
  service: Service;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The URL as logged: a token in the query string is replaced. */
export function safeUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

function checkAuth(req: FastifyRequest, expected: Buffer): void {
  const header = req.headers.authorization;
  let presented: string | undefined;
  if (header !== undefined) {
    const m = /^Bearer ([^\s]+)$/i.exec(header);
    if (!m) throw new ApiError('unauthorized', 'the Authorization header must be "Bearer <token>"');
    presented = m[1];
  } else {
    const q = (req.query as Record<string, unknown> | undefined)?.token;
    if (typeof q === 'string') {
      // EventSource cannot send headers; nothing else may carry the token in a URL.
      if (req.routeOptions.url !== '/v1/events') {
        throw new ApiError('unauthorized', 'the token is accepted in the query string only on /v1/events; send Authorization: Bearer <token>');
      }
      presented = q;
    }
  }
  if (presented === undefined) throw new ApiError('unauthorized', 'a bearer token is required (Authorization: Bearer <token>)');
  if (!timingSafeEqual(digest(presented), expected)) throw new ApiError('forbidden', 'the bearer token is not valid');
}

function toApiError(err: FastifyError | Error): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', 'request bodies must be application/json');
    default:
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
        return new ApiError('invalid_request', `body: ${e.message}`, { issues: [{ field: 'body', message: e.message }] });
      }
      return new ApiError('internal', 'internal error');
  }
}

export function buildApp(config: AppConfig, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    ...(config.logger ? { loggerInstance: config.logger } : { logger: false }),
    bodyLimit: config.bodyLimit ?? 64 * 1024,
    // One line per request comes from the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    // Resource names live in paths; keep them from growing without bound.
    routerOptions: { maxParamLength: 100 },
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  // JSON only: a text/plain body is refused (415) rather than parsed as a string.
  app.removeContentTypeParser('text/plain');
  const { service } = deps;
  const expected = digest(config.token);
  const requests = new RequestHistogram();
  const version = config.version ?? '0.0.0';

  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config?.public) return;
    checkAuth(req, expected);
  });

  // One line per request, never with the token (the header is not logged and
  // the query is scrubbed); latency goes to /metrics too.
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.observe(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    req.log.info({ method: req.method, url: safeUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const api = toApiError(err);
    if (api.status >= 500) req.log.error({ err }, 'request failed');
    if (api.status === 401) reply.header('www-authenticate', 'Bearer realm="kniv"');
    void reply.code(api.status).send(api.body());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new ApiError('not_found', `no route ${req.method} ${safeUrl(req.url.split('?')[0] ?? '')}`).body());
  });

  app.get('/health', { config: { public: true } }, async (): Promise<Health> => HealthSchema.parse({ status: 'ok', ...deps.system() }));

  const routes = new Routes(app);
  interfaceRoutes(routes, service);
  vmRoutes(routes, service);
  benchmarkRoutes(routes, service);
  systemRoutes(routes, service, version, requests);
  const endStreams = eventRoutes(routes, service, config.heartbeatMs ?? 15_000);
  app.addHook('preClose', async () => endStreams());

  if (config.uiDir !== false) uiRoutes(app, config.uiDir ?? UI_DIR);

  let document: unknown;
  docsRoutes(app, () => {
    document ??= openApiDocument(routes, {
      title: 'kniv',
      version,
      description: 'KNI interfaces, guests wired to them through vhost-net, benchmarks, events and metrics',
    });
    return document;
  });
  return app;
}
