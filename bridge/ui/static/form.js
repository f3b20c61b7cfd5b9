// The form that creates a webhook or changes one. The API checks every
// field; its message is shown as it is, next to the form, and the field it
// names is marked.

import { ApiError, call, hookPath } from './api.js';
import { h, replace } from './dom.js';

const ACTIONS = ['push', 'delete', 'pull'];
const FORMATS = [
  ['acr', 'acr — as Azure Container Registry sends'],
  ['cloudevents', 'cloudevents — CloudEvents 1.0 JSON'],
  ['envelope', 'envelope — the registry’s own event'],
];

// formView shows the form: empty for a new webhook (name ""), filled with
// the webhook's settings, secrets included, to change one.
export async function formView(ctx, name) {
  let hook = null;
  let secrets = { uri: '', headers: {}, secret: '' };
  if (name) {
    // show says whether the file owns it; config has the values that show
    // masks, which the form must send back whole.
    hook = await call('GET', hookPath(name));
    if (hook.source !== 'config') {
      secrets = await call('GET', hookPath(name, 'config'));
    }
  }
  if (!ctx.current()) {
    return;
  }
  if (hook && hook.source === 'config') {
    replace(ctx.view,
      h('p', { class: 'crumbs' }, h('a', { href: `#/webhooks/${encodeURIComponent(name)}` }, '← ' + name)),
      h('section', { class: 'card', id: 'read-only' },
        h('h1', null, `${name} is read-only`),
        h('p', null, 'It is defined in regwebhook’s config file. Edit the file and reload regwebhook (SIGHUP) to change it.')));
    return;
  }

  const f = {
    name: h('input', { id: 'f-name', name: 'name', value: name || '', disabled: !!name, autocomplete: 'off', spellcheck: false,
      placeholder: 'myhook01' }),
    uri: h('input', { id: 'f-uri', name: 'uri', type: 'text', inputMode: 'url', value: secrets.uri || '', autocomplete: 'off',
      spellcheck: false, placeholder: 'https://ci.example.com/hooks/registry' }),
    actions: Object.fromEntries(ACTIONS.map((a) => [a, h('input', {
      type: 'checkbox', id: 'f-action-' + a, name: 'actions', value: a,
      checked: hook ? (hook.actions || []).includes(a) : a !== 'pull',
    })])),
    headers: h('div', { id: 'f-headers', class: 'header-rows' }),
    scope: h('input', { id: 'f-scope', name: 'scope', value: hook ? hook.scope || '' : '', autocomplete: 'off', spellcheck: false,
      placeholder: 'team/app:*' }),
    status: select('f-status', [['enabled', 'enabled'], ['disabled', 'disabled']], hook ? hook.status : 'enabled'),
    format: select('f-format', FORMATS, hook ? hook.format : 'acr'),
    secret: h('input', { id: 'f-secret', name: 'secret', value: secrets.secret || '', autocomplete: 'off', spellcheck: false,
      class: 'mono', placeholder: 'none' }),
    insecure: h('input', { type: 'checkbox', id: 'f-insecure', name: 'insecureSkipVerify', checked: !!(hook && hook.insecureSkipVerify) }),
  };
  const error = h('div', { id: 'form-error', class: 'form-error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', class: 'button primary', id: 'save' }, name ? 'Save changes' : 'Create webhook');

  for (const [k, v] of Object.entries(secrets.headers || {}).sort(([a], [b]) => a.localeCompare(b))) {
    f.headers.appendChild(headerRow(k, v));
  }

  const form = h('form', { id: 'webhook-form', class: 'card form', noValidate: true, onsubmit: submit },
    field('name', 'Name', f.name, name ? 'The name cannot change.' : '5 to 50 lowercase letters and digits.'),
    field('uri', 'Service URI', f.uri, 'The http or https URL that gets a POST for each event.'),
    h('fieldset', { class: 'field', 'data-field': 'actions' },
      h('legend', null, 'Actions'),
      h('div', { class: 'checks' }, ACTIONS.map((a) => h('label', { class: 'check' }, f.actions[a], ' ', a))),
      h('p', { class: 'hint' }, 'Which registry events are sent. Pull events are many; take them only if you need them.')),
    field('scope', 'Scope', f.scope, h('span', null, 'Empty: every repository. ', h('code', null, 'repo:tag'), ', ',
      h('code', null, 'repo:*'), ' or globs such as ', h('code', null, 'team/*:v1.*'), '; ', h('code', null, 'repo'), ' alone means ',
      h('code', null, 'repo:latest'), '.')),
    h('fieldset', { class: 'field', 'data-field': 'headers' },
      h('legend', null, 'Custom headers'),
      f.headers,
      h('button', { type: 'button', class: 'button small quiet', id: 'add-header', onclick: () => {
        const row = headerRow('', '');
        f.headers.appendChild(row);
        row.querySelector('input').focus();
      } }, '+ Add header'),
      h('p', { class: 'hint' }, 'Sent with every request, e.g. Authorization. Their values are shown as *** everywhere but here.')),
    h('div', { class: 'row2' },
      field('status', 'Status', f.status, 'A disabled webhook gets no new events; its queued deliveries wait.'),
      field('format', 'Payload format', f.format, '')),
    field('secret', 'Signing secret', h('div', { class: 'inline' }, f.secret,
      h('button', { type: 'button', class: 'button small', id: 'generate-secret', onclick: () => { f.secret.value = newSecret(); } }, 'Generate')),
    'Optional. When set, each request is signed as Standard Webhooks does (webhook-signature). Give the same secret to the receiver.'),
    h('div', { class: 'field', 'data-field': 'insecureSkipVerify' },
      h('label', { class: 'check' }, f.insecure, ' Skip TLS certificate verification for this webhook'),
      h('p', { class: 'hint' }, 'Only for a test receiver with a self-signed certificate.')),
    error,
    h('div', { class: 'buttons' },
      save,
      h('a', { class: 'button quiet', href: name ? `#/webhooks/${encodeURIComponent(name)}` : '#/' }, 'Cancel')));

  replace(ctx.view,
    h('p', { class: 'crumbs' }, name
      ? h('a', { href: `#/webhooks/${encodeURIComponent(name)}` }, '← ' + name)
      : h('a', { href: '#/' }, '← Webhooks')),
    h('h1', null, name ? `Edit ${name}` : 'New webhook'),
    form);
  (name ? f.uri : f.name).focus();

  async function submit(ev) {
    ev.preventDefault();
    showError(null);
    const headers = {};
    for (const row of f.headers.querySelectorAll('.header-row')) {
      const [k, v] = [...row.querySelectorAll('input')].map((i) => i.value);
      if (k.trim() === '' && v === '') {
        continue;
      }
      if (Object.hasOwn(headers, k.trim())) {
        showError(new ApiError(400, 'invalid', `headers: ${k.trim()} is given twice`, 'headers'));
        return;
      }
      headers[k.trim()] = v;
    }
    const body = {
      uri: f.uri.value.trim(),
      actions: ACTIONS.filter((a) => f.actions[a].checked),
      scope: f.scope.value.trim(),
      status: f.status.value,
      format: f.format.value,
      insecureSkipVerify: f.insecure.checked,
    };
    // A new webhook without headers or secret leaves them out; a change
    // sends them always, so that emptying them clears them.
    if (name || Object.keys(headers).length > 0) {
      body.headers = headers;
    }
    if (name || f.secret.value.trim() !== '') {
      body.secret = f.secret.value.trim();
    }
    save.disabled = true;
    try {
      if (name) {
        await call('PATCH', hookPath(name), body);
        ctx.notify(`Saved ${name}.`, 'ok');
        ctx.go(`#/webhooks/${encodeURIComponent(name)}`);
      } else {
        body.name = f.name.value.trim();
        const made = await call('POST', '/webhooks', body);
        ctx.notify(`Created webhook ${made.name}. Push an image that matches its scope, or ping it.`, 'ok');
        ctx.go(`#/webhooks/${encodeURIComponent(made.name)}`);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        ctx.fail(e);
      } else {
        showError(e);
      }
    } finally {
      save.disabled = false;
    }
  }

  // showError shows the API's message by the buttons and marks the field
  // it names; null clears both.
  function showError(e) {
    for (const el of form.querySelectorAll('.invalid')) {
      el.classList.remove('invalid');
    }
    if (!e) {
      error.hidden = true;
      return;
    }
    replace(error, e instanceof ApiError ? e.message : String(e));
    error.hidden = false;
    const wrap = e.field && form.querySelector(`[data-field="${CSS.escape(e.field)}"]`);
    if (wrap) {
      wrap.classList.add('invalid');
    }
    error.scrollIntoView({ block: 'nearest' });
  }
}

function field(key, label, control, hint) {
  const id = control.id || (control.querySelector && control.querySelector('input') || {}).id;
  return h('div', { class: 'field', 'data-field': key },
    h('label', { for: id }, label),
    control,
    hint && h('p', { class: 'hint' }, hint));
}

function select(id, options, value) {
  return h('select', { id, name: id.replace(/^f-/, '') },
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

function headerRow(k, v) {
  const row = h('div', { class: 'header-row' },
    h('input', { class: 'header-name', value: k, placeholder: 'Header-Name', 'aria-label': 'Header name', autocomplete: 'off', spellcheck: false }),
    h('input', { class: 'header-value', value: v, placeholder: 'value', 'aria-label': 'Header value', autocomplete: 'off', spellcheck: false }),
    h('button', { type: 'button', class: 'button small quiet', 'aria-label': 'Remove header', onclick: () => row.remove() }, 'Remove'));
  return row;
}

// newSecret makes a signing secret: whsec_ and the base64 of 32 random
// bytes (SPEC §3).
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return 'whsec_' + btoa(String.fromCharCode(...bytes));
}
