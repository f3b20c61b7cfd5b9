// The page: a hash router over three views (the list, a webhook, the
// form), the admin token prompt, notices and the confirmation dialog.
//
// Routes: #/ the list · #/new a new webhook · #/webhooks/NAME a webhook,
// its deliveries and dead letters · #/webhooks/NAME/edit its form.

import { ApiError, forgetToken, setToken, token } from './api.js';
import { h, replace } from './dom.js';
import { listView } from './list.js';
import { detailView } from './detail.js';
import { formView } from './form.js';

const view = document.getElementById('view');
const notice = document.getElementById('notice');
const signout = document.getElementById('signout');

let generation = 0; // bumped by every route; stale async work checks it
let leave = null; // stops what the current view runs (its refresh timer)

// route shows the view the location's hash names.
async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  const gen = ++generation;
  const ctx = {
    view,
    current: () => gen === generation,
    onLeave: (fn) => { leave = fn; },
    go,
    notify,
    confirm,
    fail: (e) => failAction(e),
  };
  signout.hidden = !token();
  let parts;
  try {
    parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = ['?'];
  }
  try {
    if (parts.length === 0) {
      await listView(ctx);
    } else if (parts.length === 1 && parts[0] === 'new') {
      await formView(ctx, '');
    } else if (parts[0] === 'webhooks' && parts.length === 2) {
      await detailView(ctx, parts[1]);
    } else if (parts[0] === 'webhooks' && parts.length === 3 && parts[2] === 'edit') {
      await formView(ctx, parts[1]);
    } else {
      replace(view, h('section', { class: 'card empty' },
        h('h1', null, 'Nothing here'),
        h('p', null, 'This page does not exist. ', h('a', { href: '#/' }, 'Back to the webhooks'), '.')));
    }
  } catch (e) {
    if (ctx.current()) {
      failView(e);
    }
  }
}

// go moves to a route; the same route again is shown afresh.
function go(hash) {
  if (location.hash === hash) {
    route();
  } else {
    location.hash = hash;
  }
}

// failView shows why a view could not be read.
function failView(e) {
  if (e instanceof ApiError && e.status === 401) {
    askToken(e.message);
    return;
  }
  const msg = e instanceof ApiError ? e.message : 'The page failed: ' + e;
  const hint = e instanceof ApiError && e.code === 'forbidden'
    ? 'Configure admin.token and open this page with it, or open it on the machine regwebhook runs on as http://localhost:PORT/ui/.'
    : '';
  replace(view, h('section', { class: 'card error-card', role: 'alert' },
    h('h1', null, 'Could not load this page'),
    h('p', { class: 'error-text' }, msg),
    hint && h('p', { class: 'muted' }, hint),
    h('p', null, h('button', { type: 'button', class: 'button', onclick: () => route() }, 'Try again'))));
}

// failAction reports a change that did not work.
function failAction(e) {
  if (e instanceof ApiError && e.status === 401) {
    askToken(e.message);
    return;
  }
  notify(e instanceof ApiError ? e.message : String(e), 'error');
}

// askToken replaces the view with the admin token prompt; the view is read
// again once a token is given. A token the API refused is forgotten.
function askToken(message) {
  if (leave) {
    leave();
    leave = null;
  }
  generation++;
  const refused = token() !== '';
  forgetToken();
  signout.hidden = true;
  const input = h('input', {
    type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true,
    spellcheck: false, 'aria-describedby': 'token-error',
  });
  const error = h('p', { id: 'token-error', class: 'field-error', role: 'alert' },
    refused ? 'That token was refused: ' + message : '');
  const form = h('form', { id: 'token-form', class: 'stack', onsubmit: (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    if (!value) {
      error.textContent = 'Type the admin token.';
      return;
    }
    setToken(value);
    route();
  } },
  h('label', { for: 'token' }, 'Admin token'),
  input,
  error,
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'button primary' }, 'Continue')));
  replace(view, h('section', { class: 'card auth' },
    h('h1', null, 'Sign in'),
    h('p', null, 'regwebhook’s API needs its admin token (', h('code', null, 'admin.token'), ' in the config file).'),
    h('p', { class: 'muted' }, 'The token is kept in this browser tab only, until the tab is closed.'),
    form));
  input.focus();
}

let noticeTimer = 0;

// notify shows a message above the view: kind "ok" fades after a while,
// "error" stays until closed or the next one.
function notify(message, kind) {
  clearTimeout(noticeTimer);
  replace(notice,
    h('span', { class: 'notice-text' }, message),
    h('button', { type: 'button', class: 'close', 'aria-label': 'Close', onclick: () => { notice.hidden = true; } }, '×'));
  notice.className = 'notice ' + (kind || 'ok');
  notice.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  notice.hidden = false;
  if (kind !== 'error') {
    noticeTimer = setTimeout(() => { notice.hidden = true; }, 6000);
  }
}

// confirm asks a question in a modal dialog; it resolves true for the
// confirm button, false for cancel or Escape.
function confirm(title, text, okLabel) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = okLabel || 'Confirm';
  return new Promise((resolve) => {
    const done = (answer) => {
      ok.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dlg.removeEventListener('cancel', no);
      if (dlg.open) {
        dlg.close();
      }
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dlg.addEventListener('cancel', no);
    dlg.showModal();
    cancel.focus();
  });
}

signout.addEventListener('click', () => {
  forgetToken();
  notify('The admin token is forgotten in this tab.', 'ok');
  route();
});
window.addEventListener('hashchange', () => {
  // An error was about the view being left; a success notice (say, of a
  // delete that moved to the list) is about where the user goes.
  if (notice.classList.contains('error')) {
    notice.hidden = true;
  }
  route();
});
route();
