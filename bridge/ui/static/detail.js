// One webhook: its settings, ping, enable/disable, edit, delete; its recent
// deliveries (history) and its dead letters. Read again every few seconds
// while shown, keeping the deliveries that are open open.

import { ApiError, call, hookPath } from './api.js';
import { badge, body, h, replace, timeEl } from './dom.js';
import { entryKey, entryView } from './entry.js';
import { scopeText, statusBadge } from './list.js';

const REFRESH_MS = 3000;

export async function detailView(ctx, name) {
  const state = { name, hook: null, events: null, dead: null };
  const [hook, events, dead] = await read(name);
  if (!ctx.current()) {
    return;
  }
  const el = {
    head: h('div', { class: 'page-head' }),
    summary: h('section', { class: 'card', id: 'settings' }),
    ping: h('section', { class: 'card', id: 'ping-result', hidden: true }),
    events: h('div', { id: 'events-list' }),
    dead: h('div', { id: 'deadletters-list' }),
    deadTools: h('div', { class: 'tools' }),
  };
  replace(ctx.view,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Webhooks')),
    el.head,
    el.summary,
    el.ping,
    h('section', { class: 'card', id: 'events' },
      h('div', { class: 'card-head' },
        h('h2', null, 'Recent deliveries'),
        h('button', { type: 'button', class: 'button small quiet', id: 'refresh', onclick: () => refresh(true) }, 'Refresh')),
      el.events),
    h('section', { class: 'card', id: 'deadletters' },
      h('div', { class: 'card-head' }, h('h2', null, 'Dead letters'), el.deadTools),
      el.dead));

  const actions = {
    ping: async (button) => {
      button.disabled = true;
      button.textContent = 'Pinging…';
      try {
        const e = await call('POST', hookPath(name, 'ping'));
        if (!ctx.current()) {
          return;
        }
        replace(el.ping,
          h('div', { class: 'card-head' },
            h('h2', null, 'Ping'),
            h('button', { type: 'button', class: 'button small quiet', onclick: () => { el.ping.hidden = true; } }, 'Hide')),
          h('p', { class: 'muted' }, 'Sent now with the webhook’s headers and signature, outside the queue; recorded in its deliveries too.'),
          entryView(e, { open: true }));
        el.ping.hidden = false;
        await refresh(true);
      } catch (e) {
        ctx.fail(e);
      } finally {
        button.disabled = false;
        button.textContent = 'Ping';
      }
    },
    toggle: async () => {
      const next = state.hook.status === 'enabled' ? 'disabled' : 'enabled';
      try {
        state.hook = await call('PATCH', hookPath(name), { status: next });
        ctx.notify(next === 'enabled'
          ? `Enabled ${name}: it gets new events again, and its held deliveries go out.`
          : `Disabled ${name}: it gets no new events; its queued deliveries are held.`, 'ok');
        if (ctx.current()) {
          drawHook();
        }
      } catch (e) {
        ctx.fail(e);
      }
    },
    remove: async () => {
      const ok = await ctx.confirm(`Delete ${name}?`,
        'Its queued deliveries, dead letters and history go with it. This cannot be undone.', 'Delete webhook');
      if (!ok) {
        return;
      }
      try {
        await call('DELETE', hookPath(name));
        ctx.notify(`Deleted webhook ${name}.`, 'ok');
        ctx.go('#/');
      } catch (e) {
        ctx.fail(e);
      }
    },
  };

  function drawHook() {
    const w = state.hook;
    const fromConfig = w.source === 'config';
    replace(el.head,
      h('h1', null, w.name, ' ', statusBadge(w.status), fromConfig && badge('config file', 'info')),
      h('div', { class: 'tools' },
        h('button', { type: 'button', class: 'button', id: 'ping', onclick: (ev) => actions.ping(ev.currentTarget) }, 'Ping'),
        !fromConfig && h('button', { type: 'button', class: 'button', id: 'toggle', onclick: actions.toggle },
          w.status === 'enabled' ? 'Disable' : 'Enable'),
        !fromConfig && h('a', { class: 'button', id: 'edit', href: `#/webhooks/${encodeURIComponent(name)}/edit` }, 'Edit'),
        !fromConfig && h('button', { type: 'button', class: 'button danger', id: 'delete', onclick: actions.remove }, 'Delete')));
    const headers = Object.keys(w.headers || {}).sort();
    replace(el.summary,
      fromConfig && h('p', { class: 'note', id: 'read-only' },
        'This webhook is defined in regwebhook’s config file, so it is read-only here: edit the file and reload regwebhook (SIGHUP) to change it. Ping, deliveries and dead letters work as for any webhook.'),
      h('dl', { class: 'settings' },
        term('Service URI', h('code', null, w.uri), h('span', { class: 'muted small' }, ' (path hidden: it may hold a secret)')),
        term('Scope', scopeText(w.scope)),
        term('Actions', (w.actions || []).join(', ')),
        term('Format', w.format),
        term('Custom headers', headers.length ? headers.map((k) => h('code', { class: 'chip' }, `${k}: ***`)) : h('span', { class: 'muted' }, 'none')),
        term('Signing secret', w.secret ? 'set (Standard Webhooks signatures)' : h('span', { class: 'muted' }, 'none')),
        term('TLS verification', w.insecureSkipVerify ? h('span', { class: 'bad-text' }, 'skipped') : 'on'),
        term('Last delivery', w.lastDelivery
          ? [badge(w.lastDelivery.status, w.lastDelivery.status === 'succeeded' ? 'ok' : 'bad'), ' ', timeEl(w.lastDelivery.time)]
          : h('span', { class: 'muted' }, 'none yet')),
        w.failingSince && term('Failing since', h('span', { class: 'bad-text' }, timeEl(w.failingSince))),
        w.lastError && term('Last error', h('span', { class: 'error-text', id: 'last-error' }, w.lastError))));
  }

  function drawEvents() {
    const open = new Set([...el.events.querySelectorAll('details[open]')].map((d) => d.dataset.key));
    if (state.events.length === 0) {
      replace(el.events, h('p', { class: 'muted empty-line' },
        'No deliveries yet. Push an image that matches the scope, or send a ping.'));
      return;
    }
    replace(el.events, state.events.map((e) => entryView(e, { open: open.has(entryKey(e)), onRedeliver: redeliver })));
  }

  function drawDead() {
    const n = state.dead.length;
    replace(el.deadTools, n > 0 && [
      h('button', { type: 'button', class: 'button small', id: 'redeliver-all', onclick: redeliverAll }, `Redeliver all (${n})`),
      h('button', { type: 'button', class: 'button small danger', id: 'purge', onclick: purge }, 'Purge')]);
    if (n === 0) {
      replace(el.dead, h('p', { class: 'muted empty-line' },
        'No dead letters: every delivery got through, or is still being retried.'));
      return;
    }
    const open = new Set([...el.dead.querySelectorAll('details[open]')].map((d) => d.dataset.id));
    replace(el.dead, state.dead.map((d) => h('details', { class: 'entry dead', open: open.has(d.id), 'data-id': d.id },
      h('summary', null,
        h('span', { class: 'when' }, timeEl(d.died)),
        badge(d.action, 'action'),
        h('span', { class: 'muted small' }, `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`),
        h('span', { class: 'error-text small clip' }, d.error)),
      h('div', { class: 'entry-body' },
        h('p', { class: 'error-text' }, d.error),
        h('h5', null, 'Payload', d.contentType ? [' ', h('span', { class: 'muted small' }, `(${d.contentType})`)] : null),
        body(d.content),
        h('div', { class: 'entry-foot' },
          h('span', { class: 'muted small' }, 'Delivery ', h('code', null, d.id), ' · queued ', timeEl(d.created)),
          h('button', { type: 'button', class: 'button small primary', onclick: () => redeliver(d) }, 'Redeliver'))))));
  }

  async function redeliver(d) {
    try {
      await call('POST', hookPath(name, 'deliveries', d.id, 'redeliver'));
      ctx.notify(`Delivery ${d.id} is queued again.`, 'ok');
      await refresh(true);
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function redeliverAll() {
    try {
      const r = await call('POST', hookPath(name, 'deadletters', 'redeliver'));
      ctx.notify(`Queued ${r.queued} dead letter${r.queued === 1 ? '' : 's'} again.`, 'ok');
      await refresh(true);
    } catch (e) {
      ctx.fail(e);
    }
  }

  async function purge() {
    const ok = await ctx.confirm(`Purge the dead letters of ${name}?`,
      `The ${state.dead.length} deliveries that ran out of attempts are dropped for good.`, 'Purge');
    if (!ok) {
      return;
    }
    try {
      const r = await call('DELETE', hookPath(name, 'deadletters'));
      ctx.notify(`Purged ${r.purged} dead letter${r.purged === 1 ? '' : 's'}.`, 'ok');
      await refresh(true);
    } catch (e) {
      ctx.fail(e);
    }
  }

  // refresh reads the webhook again and redraws what changed. Asked for
  // (loud), its errors are shown; on the timer, only a deleted webhook is.
  async function refresh(loud) {
    try {
      const [w, ev, dl] = await read(name);
      if (!ctx.current()) {
        return;
      }
      if (JSON.stringify(w) !== JSON.stringify(state.hook)) {
        state.hook = w;
        drawHook();
      }
      if (JSON.stringify(ev) !== JSON.stringify(state.events)) {
        state.events = ev;
        drawEvents();
      }
      if (JSON.stringify(dl) !== JSON.stringify(state.dead)) {
        state.dead = dl;
        drawDead();
      }
    } catch (e) {
      if (!ctx.current()) {
        return;
      }
      if (e instanceof ApiError && e.status === 404) {
        ctx.notify(`Webhook ${name} was deleted.`, 'error');
        ctx.go('#/');
      } else if (loud || (e instanceof ApiError && e.status === 401)) {
        ctx.fail(e);
      }
    }
  }

  state.hook = hook;
  state.events = events;
  state.dead = dead;
  drawHook();
  drawEvents();
  drawDead();
  const timer = setInterval(() => {
    if (!document.hidden) {
      refresh(false);
    }
  }, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}

// read reads a webhook, its history and its dead letters at once.
async function read(name) {
  const [w, ev, dl] = await Promise.all([
    call('GET', hookPath(name)),
    call('GET', hookPath(name, 'events')),
    call('GET', hookPath(name, 'deadletters')),
  ]);
  return [w, ev.items || [], dl.items || []];
}

function term(label, ...value) {
  return h('div', { class: 'term' }, h('dt', null, label), h('dd', null, ...value));
}
