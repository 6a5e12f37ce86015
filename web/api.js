/* global window, fetch, EventSource */
/**
 * The page's access to the REST API: JSON calls with the session cookie (same origin), errors
 * turned into ApiError with the server's code and message, and one shared EventSource for live
 * progress (server-sent events) that views subscribe to.
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {string} text
 * @returns {unknown}
 */
export function parseJson(text) {
  return JSON.parse(text);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<unknown>}
 */
export async function api(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, headers: { accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json', accept: 'application/json' };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && path !== '/api/login') {
    window.location.assign('/login.html');
    throw new ApiError(401, 'UNAUTHORIZED', 'log in first');
  }
  const text = await response.text();
  /** @type {unknown} */
  let json = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = /** @type {{ error?: { code?: string; message?: string } } | undefined} */ (json)
      ?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? text,
    );
  }
  return json;
}

/** @param {string} path */
export async function apiText(path) {
  const response = await fetch(path, { credentials: 'same-origin' });
  if (!response.ok) throw new ApiError(response.status, `HTTP_${response.status}`, path);
  return response.text();
}

/** @typedef {{ type: string; data: Record<string, unknown> }} LiveEvent */
/** @typedef {(event: LiveEvent) => void} Listener */

/** @type {Set<Listener>} */
const listeners = new Set();
/** @type {EventSource | undefined} */
let source;

const EVENT_TYPES = [
  'run-queued',
  'run-started',
  'machine-phase',
  'disk-progress',
  'machine-finished',
  'warning',
  'run-finished',
  'run-skipped',
  'work-progress',
];

/**
 * Subscribes to live events; returns the unsubscribe function.
 * @param {Listener} listener
 */
export function onLiveEvent(listener) {
  if (source === undefined) {
    source = new EventSource('/api/events');
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        const data = /** @type {Record<string, unknown>} */ (
          parseJson(/** @type {MessageEvent<string>} */ (message).data)
        );
        for (const l of listeners) l({ type, data });
      });
    }
  }
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}
