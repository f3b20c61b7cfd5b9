// Building the page. Everything that comes from the API (names, scopes,
// bodies and headers that a service URI answered) becomes text nodes, never
// markup: h() takes strings as text, and nothing here parses HTML.

// h makes an element. attrs: "class", "for", data-* and aria-* and the like
// become attributes; on* functions become listeners; other keys set
// properties (value, checked, disabled, hidden, type…). children: nodes,
// strings (text), numbers, or null/false (skipped); arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class' || k === 'for' || k === 'role' || k === 'href' || k.startsWith('data-') || k.startsWith('aria-')) {
      el.setAttribute(k, String(v));
    } else {
      el[k] = v;
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    if (Array.isArray(c)) {
      append(el, c);
    } else if (c instanceof Node) {
      el.appendChild(c);
    } else {
      el.appendChild(document.createTextNode(String(c)));
    }
  }
}

// replace puts children in place of el's.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// when formats an RFC 3339 time in the user's locale.
export function when(ts) {
  if (!ts) {
    return '';
  }
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleString();
}

// timeEl is a <time> showing ts in the user's locale, with the exact time
// as its machine-readable value.
export function timeEl(ts) {
  return h('time', { dateTime: ts, title: ts }, when(ts));
}

export function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || '') }, text);
}

// statusBadge shows an HTTP answer: ok for 2xx, bad otherwise.
export function httpBadge(code, reason) {
  if (!code) {
    return badge('no answer', 'bad');
  }
  const ok = code >= 200 && code <= 299;
  return badge(reason ? `${code} ${reason}` : String(code), ok ? 'ok' : 'bad');
}

// pretty indents a JSON body; anything else is shown as it is.
export function pretty(text) {
  if (!text) {
    return '';
  }
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// headersTable lists headers sorted by name. The API has masked the values
// of secret ones already ("***").
export function headersTable(headers) {
  const names = Object.keys(headers || {}).sort((a, b) => a.localeCompare(b));
  if (names.length === 0) {
    return h('p', { class: 'muted' }, 'No headers.');
  }
  return h('table', { class: 'kv' },
    h('tbody', null, names.map((n) => h('tr', null, h('th', { scope: 'row' }, n), h('td', null, headers[n])))));
}

// body shows a request or response body as preformatted text.
export function body(text, emptyText) {
  if (!text) {
    return h('p', { class: 'muted' }, emptyText || 'Empty body.');
  }
  return h('pre', { class: 'body' }, pretty(text));
}
