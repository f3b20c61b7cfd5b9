// One delivery attempt or ping (a history entry, SPEC §4): what was sent
// and what came back. Bodies and headers that a service URI answered are
// shown as text.

import { badge, body, h, headersTable, httpBadge, timeEl } from './dom.js';

// entryKey tells attempts apart: the delivery id is shared by the attempts
// of one delivery.
export function entryKey(e) {
  return `${e.id}/${e.attempt}/${e.timestamp}`;
}

// entryView is an entry as a <details>: the summary line, and when opened
// the request and the response. onRedeliver, when given, adds a button.
export function entryView(e, { open, onRedeliver } = {}) {
  const res = e.eventResponseMessage;
  const summary = h('summary', null,
    h('span', { class: 'when' }, timeEl(e.timestamp)),
    badge(e.action, 'action'),
    res ? httpBadge(res.statusCode, res.reasonPhrase) : badge('no answer', 'bad'),
    h('span', { class: 'muted small' }, `${e.durationMs} ms`),
    e.attempt > 1 && h('span', { class: 'muted small' }, `attempt ${e.attempt}`),
    !res && e.error && h('span', { class: 'error-text small clip' }, e.error));
  return h('details', { class: 'entry', open: !!open, 'data-key': entryKey(e), 'data-id': e.id },
    summary,
    h('div', { class: 'entry-body' },
      h('div', { class: 'exchange' },
        requestView(e.eventRequestMessage || {}),
        responseView(res, e.error)),
      h('div', { class: 'entry-foot' },
        h('span', { class: 'muted small' }, 'Delivery ', h('code', null, e.id),
          e.eventId && e.action !== 'ping' ? [' · event ', h('code', null, e.eventId)] : null),
        onRedeliver && e.action !== 'ping' && h('button', {
          type: 'button', class: 'button small', onclick: () => onRedeliver(e),
        }, 'Redeliver'))));
}

function requestView(req) {
  return h('section', { class: 'half request' },
    h('h4', null, 'Request'),
    h('p', { class: 'line' }, h('code', null, `${req.method || 'POST'} ${req.requestUri || ''}`)),
    h('h5', null, 'Headers'),
    headersTable(req.headers),
    h('h5', null, 'Body'),
    body(req.content));
}

function responseView(res, error) {
  if (!res) {
    return h('section', { class: 'half response' },
      h('h4', null, 'Response'),
      h('p', { class: 'error-text' }, error || 'No answer came.'));
  }
  return h('section', { class: 'half response' },
    h('h4', null, 'Response'),
    h('p', { class: 'line' }, httpBadge(res.statusCode, res.reasonPhrase)),
    error && h('p', { class: 'error-text' }, error),
    h('h5', null, 'Headers'),
    headersTable(res.headers),
    h('h5', null, 'Body ', h('span', { class: 'muted small' }, '(first 4 KiB)')),
    body(res.content));
}
