// One error shape for every failure the API reports: {error: {code, message, details?}}.
// Codes are stable (clients switch on them); messages are for people.
import { z } from 'zod';

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  name_in_use: 409,
  interface_in_use: 409,
  invalid_state: 409,
  limit_reached: 409,
  benchmark_running: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  module_unavailable: 503,
  qemu_unavailable: 503,
  benchmark_unavailable: 503,
  unsupported: 503,
  operation_failed: 500,
  internal: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .describe('Every failure has this shape; `code` is stable, `message` is for people');
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** A failure with a stable code; the error handler turns it into the HTTP answer. */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code];
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

export const notFound = (kind: string, name: string) => new ApiError('not_found', `no ${kind} named ${JSON.stringify(name)}`);

export const invalidState = (kind: string, name: string, state: string, action: string, allowed: readonly string[]) =>
  new ApiError('invalid_state', `${kind} ${JSON.stringify(name)} is ${state}; ${action} needs it ${allowed.join(' or ')}`, {
    state,
    allowed,
  });

/** One issue of a 400: where in the request, and why. */
export interface FieldIssue {
  /** e.g. `body.nics.0.interface`, `params.name`, `query.lines`. */
  field: string;
  message: string;
}

export function fromZod(where: 'body' | 'params' | 'query' | 'headers', err: z.ZodError): ApiError {
  const issues: FieldIssue[] = err.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''}: ${i.keys.join(', ')}` : i.message,
  }));
  const first = issues[0]!;
  return new ApiError('invalid_request', `${first.field}: ${first.message}`, { issues });
}
