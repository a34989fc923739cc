// REST client: API key storage and fetch with X-Api-Key and {"error", "detail"} replies.

const KEY_STORAGE = 'metarr.apikey';
let memoryKey = null;
const unauthorizedListeners = new Set();

/** An HTTP error reply from the agent, carrying its status, error text and detail. */
export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
  }
}

/** The stored API key, or null. */
export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || memoryKey;
  } catch {
    return memoryKey;
  }
}

/** Remember the API key (localStorage when allowed, memory otherwise). */
export function setKey(key) {
  memoryKey = key;
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage disabled (private mode): the key lives for this page only.
  }
}

/** Forget the API key. */
export function clearKey() {
  memoryKey = null;
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Nothing stored.
  }
}

/** Take `?apikey=` from the address once: store it and remove it from the URL. */
export function takeKeyFromUrl() {
  const url = new URL(window.location.href);
  const key = url.searchParams.get('apikey');
  if (key === null) return null;
  url.searchParams.delete('apikey');
  window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
  if (key.trim()) setKey(key.trim());
  return key.trim() || null;
}

/** Register a callback run whenever the agent answers 401. */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

/** Call the agent's API; resolves to the JSON reply (null for empty bodies), rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const key = getKey();
  if (key) headers['X-Api-Key'] = key;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `Cannot reach the agent (${method} ${path})`, String(err));
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = (data && typeof data.error === 'string' && data.error) || `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, message, data ? data.detail : text.slice(0, 200));
    if (response.status === 401) unauthorizedListeners.forEach((listener) => listener(error));
    throw error;
  }
  return data;
}

/** Build a query string from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** URL of an artwork image usable as <img src> (the key rides in the query string). */
export function artworkUrl(kind, id, type) {
  const key = getKey() || '';
  return `/api/${kind}/${encodeURIComponent(id)}/artwork/${encodeURIComponent(type)}?apikey=${encodeURIComponent(key)}`;
}

/** Readable one-line text for any error thrown by api(). */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  let detail = '';
  if (typeof err.detail === 'string' && err.detail) detail = err.detail;
  else if (err.detail && typeof err.detail === 'object') detail = JSON.stringify(err.detail);
  return detail && detail !== err.message ? `${err.message}: ${detail}` : err.message;
}
