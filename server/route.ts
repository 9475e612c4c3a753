// Routes declared once with their zod schemas: the same declaration validates
// the request, types the handler and becomes an OpenAPI operation.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorBodySchema, fromZod, type ErrorCode, ERROR_STATUS } from './errors.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType> {
  method: Method;
  url: string;
  summary: string;
  description?: string;
  tag: string;
  /** Routes without auth are listed here; everything else needs the bearer token. */
  public?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /** The success status and its body (undefined: no body, e.g. 204). */
  status?: number;
  response?: R;
  /** A response that is not JSON (text/plain, text/event-stream, text/html). */
  produces?: string;
  /** Error codes this route can answer with, for the document. */
  errors?: ErrorCode[];
  handler: (
    req: { params: z.output<P>; query: z.output<Q>; body: z.output<B>; raw: FastifyRequest },
    reply: FastifyReply,
  ) => Promise<z.input<R> | void | string>;
}

interface Operation {
  method: Method;
  url: string;
  summary: string;
  description: string | undefined;
  tag: string;
  public: boolean;
  params: z.ZodType | undefined;
  query: z.ZodType | undefined;
  body: z.ZodType | undefined;
  status: number;
  response: z.ZodType | undefined;
  produces: string | undefined;
  errors: ErrorCode[];
}

/** Collects the operations registered through it, for the OpenAPI document. */
export class Routes {
  readonly operations: Operation[] = [];

  constructor(private readonly app: FastifyInstance) {}

  add<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown, R extends z.ZodType = z.ZodUnknown>(
    spec: RouteSpec<P, Q, B, R>,
  ): void {
    const status = spec.status ?? 200;
    this.operations.push({
      method: spec.method,
      url: spec.url,
      summary: spec.summary,
      description: spec.description,
      tag: spec.tag,
      public: spec.public ?? false,
      params: spec.params,
      query: spec.query,
      body: spec.body,
      status,
      response: spec.response,
      produces: spec.produces,
      errors: spec.errors ?? [],
    });
    this.app.route({
      method: spec.method,
      url: spec.url,
      config: { public: spec.public ?? false },
      handler: async (request, reply) => {
        const parse = <T extends z.ZodType>(where: 'params' | 'query' | 'body', schema: T | undefined, value: unknown) => {
          if (!schema) return value as z.output<T>;
          const r = schema.safeParse(value);
          if (!r.success) throw fromZod(where, r.error);
          return r.data;
        };
        const params = parse('params', spec.params, request.params);
        const query = parse('query', spec.query, request.query);
        const body = parse('body', spec.body, spec.method === 'GET' || spec.method === 'DELETE' ? undefined : request.body);
        const out = await spec.handler({ params, query, body, raw: request }, reply);
        if (reply.sent) return reply;
        reply.code(status);
        if (spec.response) {
          // A handler answering something that does not fit its own schema is a bug:
          // a 500 rather than a wrong answer.
          return spec.response.parse(out);
        }
        if (typeof out === 'string') return out;
        return reply.send();
      },
    });
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', reused: 'inline' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

function parametersOf(where: 'path' | 'query', schema: z.ZodType | undefined) {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, prop]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    ...(typeof prop.description === 'string' ? { description: prop.description } : {}),
    schema: prop,
  }));
}

const reasons: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: follow the resource or the event stream',
  204: 'No content',
};

export function openApiDocument(routes: Routes, info: { title: string; version: string; description: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of routes.operations) {
    const path = op.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    responses[String(op.status)] = {
      description: reasons[op.status] ?? 'OK',
      ...(op.response
        ? { content: { 'application/json': { schema: jsonSchema(op.response, 'output') } } }
        : op.produces
          ? { content: { [op.produces]: { schema: { type: 'string' } } } }
          : {}),
    };
    const codes = new Set<ErrorCode>(op.errors);
    if (op.params || op.query || op.body) codes.add('invalid_request');
    if (!op.public) {
      codes.add('unauthorized');
      codes.add('forbidden');
    }
    const byStatus = new Map<number, ErrorCode[]>();
    for (const c of codes) byStatus.set(ERROR_STATUS[c], [...(byStatus.get(ERROR_STATUS[c]) ?? []), c]);
    for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[String(status)] = {
        description: `error codes: ${list.join(', ')}`,
        content: { 'application/json': { schema: jsonSchema(ErrorBodySchema, 'output') } },
      };
    }
    paths[path] ??= {};
    paths[path]![op.method.toLowerCase()] = {
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: [op.tag],
      operationId: `${op.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(op.public ? { security: [] } : {}),
      parameters: [...parametersOf('path', op.params), ...parametersOf('query', op.query)],
      ...(op.body
        ? { requestBody: { required: !(op.body.safeParse(undefined).success), content: { 'application/json': { schema: jsonSchema(op.body, 'input') } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the token in the state directory (token file, mode 0600)' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
