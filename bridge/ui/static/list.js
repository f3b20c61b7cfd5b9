// The list of webhooks: name, status, scope, actions, the last delivery and,
// while it fails, since when and the error of its last attempt. It is read
// again every few seconds while shown.

import { listWebhooks } from './api.js';
import { badge, h, replace, timeEl } from './dom.js';

const REFRESH_MS = 5000;

export async function listView(ctx) {
  const hooks = await listWebhooks();
  if (!ctx.current()) {
    return;
  }
  const table = h('div', { id: 'webhooks' });
  replace(ctx.view,
    h('div', { class: 'page-head' },
      h('h1', null, 'Webhooks'),
      h('a', { class: 'button primary', href: '#/new', id: 'new-webhook' }, 'New webhook')),
    table);
  render(table, hooks);

  const timer = setInterval(async () => {
    if (document.hidden) {
      return;
    }
    try {
      const fresh = await listWebhooks();
      if (ctx.current()) {
        render(table, fresh);
      }
    } catch {
      // The next view change or refresh says what is wrong.
    }
  }, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}

function render(el, hooks) {
  if (hooks.length === 0) {
    replace(el, h('section', { class: 'card empty', id: 'empty' },
      h('h2', null, 'No webhooks yet — create one, or add them to the config file'),
      h('p', null, 'A webhook sends a POST to a service URI for every image pushed, deleted or pulled in the repositories its scope names.'),
      h('p', { class: 'muted' }, 'Webhooks in the ', h('code', null, 'webhooks:'), ' list of regwebhook’s config file show here too, read-only.'),
      h('p', null, h('a', { class: 'button primary', href: '#/new' }, 'Create a webhook'))));
    return;
  }
  replace(el, h('table', { class: 'list' },
    h('thead', null, h('tr', null,
      ['Name', 'Status', 'Scope', 'Actions', 'Last delivery', 'Failing since'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, hooks.map(row))));
}

function row(w) {
  const last = w.lastDelivery;
  return h('tr', { 'data-name': w.name },
    h('td', { 'data-label': 'Name', class: 'name' },
      h('a', { href: '#/webhooks/' + encodeURIComponent(w.name) }, w.name),
      w.source === 'config' && badge('config file', 'info')),
    h('td', { 'data-label': 'Status' }, statusBadge(w.status)),
    h('td', { 'data-label': 'Scope', class: 'scope' }, scopeText(w.scope)),
    h('td', { 'data-label': 'Actions', class: 'actions' }, (w.actions || []).join(', ')),
    h('td', { 'data-label': 'Last delivery', class: 'last' },
      last
        ? h('span', { class: 'cell' },
          badge(last.statusCode ? `${last.status} · ${last.statusCode}` : last.status, last.status === 'succeeded' ? 'ok' : 'bad'),
          ' ', timeEl(last.time))
        : h('span', { class: 'muted' }, 'none yet')),
    h('td', { 'data-label': 'Failing since', class: 'failing' },
      w.failingSince ? h('span', { class: 'bad-text' }, timeEl(w.failingSince)) : h('span', { class: 'muted' }, '—'),
      w.lastError && h('div', { class: 'error-text small clip last-error', title: w.lastError }, w.lastError)));
}

export function statusBadge(status) {
  return badge(status, status === 'enabled' ? 'ok' : 'off');
}

// scopeText shows a scope; the empty one takes every event.
export function scopeText(scope) {
  return scope ? h('code', null, scope) : h('span', { class: 'muted' }, 'every repository');
}
