// Calls to regwebhook's admin API (/api/v1, docs/api.md), and the admin
// token they carry. The token lives in this tab's sessionStorage only: it is
// gone when the tab closes, and no other site or tab can read it.

const TOKEN_KEY = 'regwebhook.adminToken';

// The API is beside the page: /ui/ → /api/v1. Relative, so that a proxy
// that serves regwebhook under a path prefix keeps working.
const BASE = new URL('../api/v1', document.baseURI).pathname;

// ApiError is an answer that is not 2xx, or no answer at all (status 0).
// code and message are the API's own ({"error":{"code","message"}}); field
// names the request field that is wrong, for code "invalid".
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// call sends one request and returns the decoded JSON answer (null for
// 204). Every change carries Content-Type: application/json, even without a
// body: with no admin.token configured the API takes changes only so (a
// cross-site form cannot send it).
export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) {
    headers.Authorization = 'Bearer ' + t;
  }
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'regwebhook did not answer (' + e.message + '). Is it running?');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || 'http', e.message || `${res.status} ${res.statusText}`, e.field);
  }
  return data;
}

// hookPath is the API path of a webhook, or of one of its calls.
export function hookPath(name, ...rest) {
  return ['/webhooks', name, ...rest].map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join('/');
}

// listWebhooks reads every page of the list.
export async function listWebhooks() {
  const items = [];
  let after = '';
  for (;;) {
    const q = after ? '?after=' + encodeURIComponent(after) : '';
    const page = await call('GET', '/webhooks' + q);
    items.push(...(page.items || []));
    if (!page.next) {
      return items;
    }
    after = page.next;
  }
}
