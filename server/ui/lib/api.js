// @ts-check
// The REST API as the dashboard uses it: the bearer token on every call, the
// service's error shape turned into ApiError, an unreachable service into
// ServiceDownError. The token lives in sessionStorage (this tab only) and never
// in a URL, except the event stream's ?token= (EventSource cannot send headers).

/** @typedef {import('./types.js').FieldIssue} FieldIssue */

/** The service answered with {error: {code, message, details}}. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {unknown} [details]
   */
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The 400's field issues: `{field: 'body.mtu', message}`. */
  get issues() {
    const d = /** @type {{issues?: unknown} | undefined} */ (this.details);
    return Array.isArray(d?.issues) ? /** @type {FieldIssue[]} */ (d.issues) : [];
  }

  /** The token is missing or not the service's. */
  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

/** No answer at all: the service (or the appliance VM it runs in) is down. */
export class ServiceDownError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ServiceDownError';
  }
}

const TOKEN_KEY = 'kniv.token';

export const tokenStore = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  /** @param {string} t */
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class Api {
  /** @param {string} token */
  constructor(token) {
    this.token = token;
  }

  /**
   * @param {'GET' | 'POST' | 'PATCH' | 'DELETE'} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>} the JSON answer, the text of a text answer, or undefined (204)
   */
  async request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        cache: 'no-store',
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new ServiceDownError(`the service does not answer (${/** @type {Error} */ (err).message})`);
    }
    const type = res.headers.get('content-type') ?? '';
    if (res.ok) {
      if (res.status === 204) return undefined;
      return type.includes('application/json') ? res.json() : res.text();
    }
    if (type.includes('application/json')) {
      const e = /** @type {{error?: {code?: unknown, message?: unknown, details?: unknown}}} */ (await res.json().catch(() => ({})));
      if (typeof e.error?.code === 'string' && typeof e.error.message === 'string') {
        throw new ApiError(res.status, e.error.code, e.error.message, e.error.details);
      }
    }
    // Not the service's own error shape: a proxy with nothing behind it, or the
    // service shutting down (Fastify's own 503 while it closes).
    if (res.status === 502 || res.status === 503 || res.status === 504) {
      throw new ServiceDownError(`the service does not answer (HTTP ${res.status})`);
    }
    throw new ApiError(res.status, 'http_error', `HTTP ${res.status} ${res.statusText}`);
  }

  /** @param {string} path */
  get(path) {
    return this.request('GET', path);
  }

  /** @param {string} path @param {unknown} [body] */
  post(path, body) {
    return this.request('POST', path, body);
  }

  /** @param {string} path @param {unknown} body */
  patch(path, body) {
    return this.request('PATCH', path, body);
  }

  /** @param {string} path */
  del(path) {
    return this.request('DELETE', path);
  }
}

/**
 * One line for a failure outside a form: the stable code, then the message.
 * @param {unknown} err
 */
export function describe(err) {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** A path segment for a resource name typed by a user. */
export const seg = (/** @type {string} */ name) => encodeURIComponent(name);
