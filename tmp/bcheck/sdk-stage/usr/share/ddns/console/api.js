// api.js: the admin API (/api/v1) with the bearer token, which lives in
// sessionStorage only: it is gone when the tab is closed, and never put in
// a URL, a cookie or localStorage.

const KEY = 'ddns-console-token';

// The token's scope as whoami told it ('read' or 'write'); null before.
export const session = {scope: null};

export function getToken() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const what = body && body.error ? body.error : `HTTP ${status}`;
    super(body && body.field ? `${what} (${body.field})` : what);
    this.status = status;
    this.field = body ? body.field : undefined;
  }
}

// Listeners told when the API refuses the token (401).
const onUnauthorized = [];
export function whenUnauthorized(fn) {
  onUnauthorized.push(fn);
}

// api('GET', 'devices', {q: 'x'}) -> the parsed JSON answer, or throws
// ApiError. Empty parameters are left out.
export async function api(method, path, params, body, token) {
  const url = new URL(`/api/v1/${path}`, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = {Accept: 'application/json', Authorization: `Bearer ${token || getToken() || ''}`};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error'});
  } catch (e) {
    throw new ApiError(0, {error: `the gateway cannot be reached (${e.message})`});
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = {error: text.trim().slice(0, 200)}; }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !token) onUnauthorized.forEach((fn) => fn(err));
    throw err;
  }
  return data;
}
