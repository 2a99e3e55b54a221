// walhook console: a single page over the admin API (/v1) and the
// console's own /ui/api routes. No framework, no build step, no inline
// script (the Content-Security-Policy forbids it); every value reaches the
// page through textContent, never as HTML. See docs/console.md.
'use strict';

const state = {
  csrf: '',          // the session's CSRF token, in memory only
  tenant: '',        // the principal's tenant; empty for an admin
  viewTenant: '',    // the tenant of a /ui/t/{tenant}/ URL
  hooks: null,       // webhooks by id (cache for names)
  cleanup: [],       // stops the current page's timers and streams
};

const tenantMatch = location.pathname.match(/^\/ui\/t\/([^/]+)\/$/);
if (tenantMatch) state.viewTenant = decodeURIComponent(tenantMatch[1]);

// ---- DOM helpers -------------------------------------------------------

function el(tag, attrs, ...kids) {
  const svg = ['svg', 'path', 'line', 'text', 'g', 'polyline'].includes(tag);
  const n = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'class') n.setAttribute('class', v);
    else if (k in n && !svg) n[k] = v;
    else n.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    n.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return n;
}

function pill(kind, text) { return el('span', { class: 'pill ' + kind }, text); }

function flash(kind, text) { return el('div', { class: 'flash ' + kind, role: 'status' }, text); }

function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtClock(s) { return fmtTime(s).slice(11); }

function ago(s) {
  if (!s) return '';
  const sec = Math.max(0, (Date.now() - new Date(s).getTime()) / 1000);
  if (sec < 60) return Math.round(sec) + 's ago';
  if (sec < 3600) return Math.round(sec / 60) + 'm ago';
  if (sec < 86400) return Math.round(sec / 3600) + 'h ago';
  return Math.round(sec / 86400) + 'd ago';
}

function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + ' ' + units[i];
}

// sizeText writes a byte count the way a batch's max_bytes is written in
// the config and the API ("1MB", "512KB", "1500B"; KB and MB are 1024
// and 1024²), so the text can be sent back as it is.
function sizeText(n) {
  if (n > 0 && n % 1048576 === 0) return (n / 1048576) + 'MB';
  if (n > 0 && n % 1024 === 0) return (n / 1024) + 'KB';
  return n + 'B';
}

// batchText describes an endpoint's batch (the API's "batch": max_events,
// max_bytes, max_wait), or its absence, in one line.
function batchText(b) {
  if (!b) return 'One event per request';
  const events = b.max_events === 1 ? '1 event' : `${b.max_events} events`;
  return `Batches of up to ${events} or ${sizeText(b.max_bytes)}, sent within ${b.max_wait}`;
}

// batchCell is batchText for a table cell: short, with a pill.
function batchCell(b) {
  if (!b) return el('span', { class: 'small' }, 'one event per request');
  return el('span', {}, pill('info', 'batch'), ' ', el('span', { class: 'small' }, `≤ ${b.max_events} events · ${sizeText(b.max_bytes)} · ${b.max_wait}`));
}

function pretty(v) {
  if (typeof v === 'string') {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch (e) { return v; }
  }
  return JSON.stringify(v, null, 2);
}

// formatJSON re-indents JSON text token by token, never turning it into
// values, so every number and string stays exactly as written
// (9007199254740993 and 500.00 included); null when text is not JSON.
function formatJSON(text) {
  try { JSON.parse(text); } catch (e) { return null; }
  const literal = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null/y;
  const blank = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  let out = '';
  let depth = 0;
  const newline = () => '\n' + '  '.repeat(depth);
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (blank(c)) { i++; continue; }
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '{' || c === '[') {
      let j = i + 1;
      while (blank(text[j])) j++;
      if (text[j] === (c === '{' ? '}' : ']')) { out += c + text[j]; i = j + 1; continue; }
      depth++;
      out += c + newline();
      i++;
    } else if (c === '}' || c === ']') {
      depth--;
      out += newline() + c;
      i++;
    } else if (c === ',') {
      out += ',' + newline();
      i++;
    } else if (c === ':') {
      out += ': ';
      i++;
    } else {
      literal.lastIndex = i;
      const m = literal.exec(text);
      if (!m) return null;
      out += m[0];
      i += m[0].length;
    }
  }
  return out;
}

// ---- API ---------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ('HTTP ' + status));
    this.status = status;
  }
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (res.status === 401 && path !== '/ui/api/login' && path !== '/ui/api/session') {
    state.csrf = '';
    renderLogin('Your session has ended; log in again.');
    throw new APIError(401, data);
  }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

// scoped adds the viewed tenant to an API path when an admin looks at a
// tenant URL (a tenant token is scoped by the server anyway).
function scoped(path) {
  if (!state.viewTenant || state.tenant) return path;
  return path + (path.includes('?') ? '&' : '?') + 'tenant=' + encodeURIComponent(state.viewTenant);
}

async function loadHooks() {
  const res = await api('GET', scoped('/v1/webhooks?limit=1000'));
  state.hooks = new Map(res.data.map((h) => [h.id, h]));
  return res.data;
}

function hookName(id) {
  const h = state.hooks && state.hooks.get(id);
  if (!h) return id;
  if (h.name) return h.name;
  if (h.description) return h.description;
  try { return new URL(h.url).host; } catch (e) { return id; }
}

// ---- health ------------------------------------------------------------

function health(h) {
  const hl = h.health || {};
  if (hl.disabled) return { rank: 0, pill: pill('bad', 'disabled') };
  if (!h.active) return { rank: 2, pill: pill('muted', 'inactive') };
  if (hl.failing_since || hl.consecutive_failures > 0) return { rank: 1, pill: pill('warn', 'failing') };
  return { rank: 3, pill: pill('ok', 'healthy') };
}

function statusPill(s) {
  return pill({ delivered: 'ok', pending: 'info', failed: 'bad' }[s] || 'muted', s);
}

function attemptPill(a) {
  if (a.ok) return pill('ok', String(a.status_code));
  if (a.status_code) return pill('bad', String(a.status_code));
  return pill('bad', 'no response');
}

// ---- shell, login, routing ----------------------------------------------

const app = document.getElementById('app');

function renderLogin(message) {
  stopPage();
  const input = el('input', { type: 'password', id: 'token', placeholder: 'Admin or tenant token', autocomplete: 'current-password', required: true });
  const msg = el('div', { id: 'login-message' }, message ? flash('bad', message) : null);
  const form = el('form', { class: 'login', id: 'login-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await login(input.value);
    } catch (err) {
      msg.replaceChildren(flash('bad', err.message));
    }
  } },
  el('h1', {}, 'wal', el('span', {}, 'hook'), ' console'),
  el('p', { class: 'sub' }, state.viewTenant ? `Webhooks of ${state.viewTenant}. Log in with the token you were given.` : 'Log in with an admin token (admin.token in the config) or a tenant token.'),
  msg, input, el('button', { class: 'primary', type: 'submit' }, 'Log in'));
  app.replaceChildren(form);
  input.focus();
}

async function login(token) {
  const s = await api('POST', '/ui/api/login', { token });
  state.csrf = s.csrf_token;
  state.tenant = s.tenant;
  state.hooks = null;
  const want = (!location.hash || location.hash.startsWith('#token=')) ? defaultRoute() : location.hash;
  if (location.hash !== want) location.hash = want; else route();
}

function defaultRoute() { return (state.tenant || state.viewTenant) ? '#/endpoints' : '#/overview'; }

async function logout() {
  try { await api('POST', '/ui/api/logout'); } catch (e) { /* the session is gone either way */ }
  state.csrf = '';
  state.tenant = '';
  renderLogin();
}

function stopPage() {
  for (const f of state.cleanup.splice(0)) f();
}

function shell(active, ...content) {
  const tenantOnly = state.tenant || state.viewTenant;
  const links = [
    !tenantOnly && ['overview', 'Overview'],
    ['endpoints', 'Endpoints'], ['deliveries', 'Deliveries'], !tenantOnly && ['evaluations', 'Failed evaluations'],
    ['events', 'Events'], ['tail', 'Live tail'],
  ].filter(Boolean);
  const nav = el('nav', {}, links.map(([id, label]) => el('a', { href: '#/' + id, class: id === active ? 'active' : '', id: 'nav-' + id }, label)));
  const who = el('div', { class: 'who' },
    tenantOnly ? el('div', { class: 'tenant' }, 'Tenant ', el('strong', { id: 'who-tenant' }, state.tenant || state.viewTenant)) : el('div', { class: 'tenant' }, 'Admin'),
    el('button', { id: 'logout', onclick: logout }, 'Log out'));
  const main = el('main', { class: 'main', id: 'main' }, content);
  app.replaceChildren(el('div', { class: 'shell' }, el('aside', { class: 'side' }, el('div', { class: 'brand' }, 'wal', el('span', {}, 'hook')), nav, who), main));
  return main;
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || '') };
}

async function route() {
  stopPage();
  if (!state.csrf) return;
  if (state.tenant && state.viewTenant && state.tenant !== state.viewTenant) {
    shell('', el('h1', {}, 'Wrong tenant'), flash('bad', `This page is for tenant ${state.viewTenant}, but you logged in with a token of ${state.tenant}.`));
    return;
  }
  const { parts, query } = parseHash();
  const page = parts[0] || defaultRoute().slice(2);
  const pages = { overview: pageOverview, endpoints: pageEndpoints, deliveries: pageDeliveries, evaluations: pageEvaluations, events: pageEvents, tail: pageTail };
  const render = pages[page] || pageOverview;
  try {
    await render(parts.slice(1), query);
  } catch (err) {
    if (err.status === 401) return;
    shell(page, el('h1', {}, 'Something went wrong'), flash('bad', err.message));
  }
}

// every runs f now and every ms while the page is shown.
function every(ms, f) {
  const t = setInterval(() => f().catch(() => {}), ms);
  state.cleanup.push(() => clearInterval(t));
}

// ---- overview ------------------------------------------------------------

async function pageOverview() {
  const [ov, hooks, rt] = await Promise.all([api('GET', '/ui/api/overview'), loadHooks(), api('GET', '/ui/api/runtime')]);
  const cards = el('div', { class: 'cards', id: 'overview-cards' });
  const chart = el('div', { class: 'panel', id: 'overview-chart' });
  const table = el('div', { id: 'overview-endpoints' });
  const backfills = el('div', { id: 'overview-backfills' });
  const instances = el('div', { id: 'overview-instances' });
  shell('overview', el('h1', {}, 'Overview'), el('p', { class: 'sub' }, 'The change source, the retry queue and how the endpoints are doing.'),
    cards, el('h2', {}, 'Throughput, last 10 minutes'), chart, el('h2', {}, 'Instances'), instances,
    el('h2', {}, 'Backfills in progress'), backfills, el('h2', {}, 'Endpoints by health'), table);
  const draw = (ov, hooks, bf, ins) => {
    cards.replaceChildren(...overviewCards(ov, hooks));
    chart.replaceChildren(rateChart(ov.rates || []));
    instances.replaceChildren(instanceTable(ins));
    backfills.replaceChildren(backfillTable(bf));
    table.replaceChildren(endpointTable(hooks.slice().sort((a, b) => health(a).rank - health(b).rank), rt.data || {}));
  };
  draw(ov, hooks, await loadBackfills(), await loadInstances());
  every(5000, async () => draw(await api('GET', '/ui/api/overview'), await loadHooks(), await loadBackfills(), await loadInstances()));
}

// loadInstances lists the walhook instances sharing the state schema
// (GET /v1/instances, admins only); null when the list cannot be read.
async function loadInstances() {
  try { return (await api('GET', '/v1/instances')).data; } catch (e) { return null; }
}

// instanceTable shows each instance: its role, whether its heartbeat is
// recent, and what it is delivering (docs/architecture.md, "Membership").
function instanceTable(all) {
  if (!all) return el('div', { class: 'panel empty' }, 'Instances cannot be listed right now.');
  if (!all.length) return el('div', { class: 'panel empty' }, 'No instance is registered.');
  const role = { leader: 'ok', standby: 'info', poller: 'info' };
  return el('table', { id: 'instances-table' },
    el('thead', {}, el('tr', {}, ['State', 'Role', 'Instance', 'Version', 'Heartbeat', 'In flight', 'Retries', 'Attempts/s', 'Started'].map((t) => el('th', {}, t)))),
    el('tbody', {}, all.map((i) => el('tr', { 'data-id': i.id },
      el('td', {}, i.state === 'alive' ? pill('ok', 'alive') : pill('bad', 'dead')),
      el('td', {}, pill(role[i.role] || 'muted', i.role)),
      el('td', {}, el('div', {}, el('strong', {}, i.host), ' · pid ', String(i.pid)), el('div', { class: 'small mono' }, i.id + (i.listen ? ' · ' + i.listen : ''))),
      el('td', { class: 'mono' }, i.version),
      el('td', {}, Math.round(i.heartbeat_age_seconds) + 's ago'),
      el('td', {}, String(i.in_flight)),
      el('td', {}, String(i.retries_in_flight)),
      el('td', {}, i.attempts_per_second.toFixed(1) + (i.failures_per_second > 0 ? ' (' + i.failures_per_second.toFixed(1) + ' failing)' : '')),
      el('td', {}, fmtTime(i.started_at))))));
}

// loadBackfills lists the newest backfills (GET /v1/backfills, admins
// only); null when the list cannot be read.
async function loadBackfills() {
  try { return (await api('GET', '/v1/backfills?limit=50')).data; } catch (e) { return null; }
}

// backfillTable shows the backfills not finished: pending, running or
// paused, with rows done of the total.
function backfillTable(all) {
  if (!all) return el('div', { class: 'panel empty' }, 'Backfills cannot be listed right now.');
  const open = all.filter((b) => ['pending', 'running', 'paused'].includes(b.status));
  if (!open.length) return el('div', { class: 'panel empty' }, 'No backfill in progress.');
  const kind = { running: 'ok', pending: 'info', paused: 'warn' };
  const progress = (b) => {
    if (b.rows_total === null || b.rows_total === undefined) return `${b.rows_done} rows`;
    const pct = b.rows_total > 0 ? Math.min(100, (100 * b.rows_done) / b.rows_total) : 100;
    return `${b.rows_done} / ${b.rows_total}${b.rows_total_exact ? '' : ' (estimate)'} · ${pct.toFixed(0)}%`;
  };
  return el('table', { id: 'backfills-table' },
    el('thead', {}, el('tr', {}, ['Status', 'Table', 'Rows', 'Sent', 'Limited to', 'Started'].map((t) => el('th', {}, t)))),
    el('tbody', {}, open.map((b) => el('tr', { 'data-id': b.id },
      el('td', {}, pill(kind[b.status] || 'info', b.status)),
      el('td', {}, el('div', {}, el('strong', {}, b.table)), el('div', { class: 'small mono' }, b.id + (b.where ? ' · where ' + b.where : ''))),
      el('td', {}, progress(b)),
      el('td', {}, String(b.rows_sent)),
      el('td', { class: 'small' }, [b.event, b.endpoint_id && hookName(b.endpoint_id)].filter(Boolean).join(' · ') || '—'),
      el('td', {}, b.started_at ? fmtTime(b.started_at) : '—')))));
}

function overviewCards(ov, hooks) {
  const src = ov.source;
  const card = (label, value, note, id) => el('div', { class: 'card', id }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value), el('div', { class: 'note' }, note));
  const out = [];
  if (src) {
    const st = src.streaming ? pill('ok', 'streaming') : src.connected ? pill('info', 'connected') : pill('bad', 'not connected');
    out.push(card(src.mode === 'outbox' ? 'Outbox table' : 'Replication slot', el('span', {}, st), src.name + (src.last_error ? ' — ' + src.last_error : ''), 'card-source'));
    if (src.mode === 'outbox' && src.rows_waiting !== undefined) {
      out.push(card('Outbox backlog', (src.rows_estimated ? '~' : '') + String(src.rows_waiting), 'rows waiting · oldest ' + (src.oldest_age_seconds || 0).toFixed(1) + ' s', 'card-backlog'));
    }
    if (src.mode !== 'outbox') {
      out.push(card('Lag', fmtBytes(src.lag_bytes), (src.lag_seconds || 0).toFixed(1) + ' s behind' + (src.confirmed_lsn ? ' · confirmed ' + src.confirmed_lsn : ''), 'card-lag'));
    }
  }
  if (ov.queue) out.push(card('Retry queue', String(ov.queue.pending), `${ov.queue.due} due now · ${ov.queue.failed} failed`, 'card-queue'));
  const counts = [0, 0, 0, 0];
  for (const h of hooks) counts[health(h).rank]++;
  out.push(card('Endpoints', String(hooks.length), `${counts[3]} healthy · ${counts[1]} failing · ${counts[0]} disabled`, 'card-endpoints'));
  const last = (ov.rates || []).slice(-12);
  const avg = (k) => last.length ? last.reduce((s, p) => s + p[k], 0) / last.length : 0;
  out.push(card('Last minute', avg('events_per_second').toFixed(1) + ' ev/s', avg('deliveries_per_second').toFixed(1) + ' deliveries/s', 'card-rate'));
  return out;
}

function rateChart(points) {
  const W = 900, H = 180, L = 40, B = 22, T = 8;
  const series = [['events', 'events_per_second'], ['deliveries', 'deliveries_per_second'], ['failures', 'failed_attempts_per_second']];
  const max = Math.max(1, ...points.flatMap((p) => series.map(([, k]) => p[k])));
  const x = (i) => L + (W - L - 6) * (points.length > 1 ? i / (points.length - 1) : 0);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'events and deliveries per second' });
  for (const f of [0, 0.5, 1]) {
    svg.append(el('line', { class: f ? 'grid' : 'axis', x1: L, x2: W, y1: y(max * f), y2: y(max * f) }));
    svg.append(el('text', { x: L - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, (max * f).toFixed(max * f < 10 && f ? 1 : 0)));
  }
  if (points.length) {
    svg.append(el('text', { x: L, y: H - 4 }, fmtClock(points[0].at)));
    svg.append(el('text', { x: W, y: H - 4, 'text-anchor': 'end' }, fmtClock(points[points.length - 1].at)));
  }
  for (const [cls, k] of series) {
    svg.append(el('polyline', { class: cls, points: points.map((p, i) => `${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join(' ') }));
  }
  const legend = el('div', { class: 'legend' }, el('span', {}, el('i', { class: 'events' }), 'events/s'),
    el('span', {}, el('i', { class: 'deliveries' }), 'deliveries/s'), el('span', {}, el('i', { class: 'failures' }), 'failed attempts/s'));
  return el('div', {}, legend, svg);
}

// ---- endpoints -------------------------------------------------------------

function runtimeText(rt) {
  if (!rt) return '—';
  let s = `${rt.in_flight !== undefined ? rt.in_flight + ' / ' : ''}${rt.concurrency}`;
  if (rt.rate_per_second !== undefined) s += ` · ${rt.rate_per_second.toFixed(1)}/s`;
  if (rt.rate_limit) s += ` (limit ${rt.rate_limit})`;
  return s;
}

function endpointTable(hooks, runtime) {
  if (!hooks.length) return el('div', { class: 'panel empty' }, 'No endpoints yet.');
  return el('table', { id: 'endpoints-table' },
    el('thead', {}, el('tr', {}, ['Health', 'Endpoint', 'Events', 'Tenant', 'Concurrency', 'Requests', 'Failing since'].map((t) => el('th', {}, t)))),
    el('tbody', {}, hooks.map((h) => el('tr', { class: 'click', 'data-id': h.id, onclick: () => { location.hash = '#/endpoints/' + encodeURIComponent(h.id); } },
      el('td', {}, health(h).pill),
      el('td', {}, el('div', {}, el('strong', {}, hookName(h.id)), ' ', el('span', { class: 'small' }, h.source === 'config' ? 'config' : h.id)), el('div', { class: 'small mono' }, h.url)),
      el('td', { class: 'small' }, (h.events || []).join(', ')),
      el('td', {}, h.tenant || '—'),
      el('td', { title: 'in flight / configured concurrency' }, runtimeText(runtime[h.id])),
      el('td', { class: 'batch', title: h.batch ? batchText(h.batch) : 'one event per request' }, batchCell(h.batch)),
      el('td', {}, h.health.failing_since ? `${fmtTime(h.health.failing_since)} (${h.health.consecutive_failures} failures)` : '—')))));
}

async function pageEndpoints(parts) {
  if (parts[0]) return pageEndpoint(parts[0]);
  const [hooks, rt] = await Promise.all([loadHooks(), api('GET', '/ui/api/runtime')]);
  shell('endpoints', el('h1', {}, 'Endpoints'),
    el('p', { class: 'sub' }, (state.tenant || state.viewTenant) ? 'Your webhooks. Concurrency is how many requests each may have open at once; in-flight counts appear while deliveries are under way.'
      : 'Endpoints from the config file and registered through the API. Concurrency shows what is configured; in-flight counts appear when the dispatcher reports them.'),
    endpointTable(hooks, rt.data || {}));
}

async function pageEndpoint(id) {
  const [h, rt] = await Promise.all([api('GET', scoped('/v1/webhooks/' + encodeURIComponent(id))), api('GET', '/ui/api/runtime'), loadHooks()]);
  const notice = el('div', { id: 'endpoint-notice' });
  const act = (label, cls, f, elid) => el('button', { class: cls, id: elid, onclick: async (e) => {
    e.target.disabled = true;
    try { await f(); } catch (err) { notice.replaceChildren(flash('bad', err.message)); } finally { e.target.disabled = false; }
  } }, label);
  const base = '/v1/webhooks/' + encodeURIComponent(id);
  const reload = async (msg) => { await pageEndpoint(id); if (msg) document.getElementById('endpoint-notice').replaceChildren(msg); };
  const actions = el('div', { class: 'actions' });
  if (h.source === 'api') {
    actions.append(h.active
      ? act('Disable', 'danger', async () => { await api('PATCH', scoped(base), { active: false }); await reload(flash('ok', 'Endpoint disabled: it receives no new events.')); }, 'btn-disable')
      : act('Activate', 'primary', async () => { await api('PATCH', scoped(base), { active: true }); await reload(flash('ok', 'Endpoint active again.')); }, 'btn-activate'));
  }
  if (h.health.disabled) {
    actions.append(act('Enable', 'primary', async () => { await api('POST', scoped(base + '/enable')); await reload(flash('ok', 'Endpoint enabled and its failure streak cleared.')); }, 'btn-enable'));
  }
  actions.append(act('Send test event', '', async () => {
    const t = await api('POST', scoped(base + '/test'));
    notice.replaceChildren(el('div', { class: 'attempt', id: 'test-result' }, el('header', {}, el('strong', {}, 'Test event ' + t.event_id), attemptPill(t), el('span', { class: 'small' }, t.duration_ms.toFixed(1) + ' ms')),
      t.error ? el('div', { class: 'flash bad' }, t.error) : null, el('h3', {}, 'Response body'), el('pre', {}, t.response || '(empty)')));
  }, 'btn-test'));
  if (h.source === 'api') {
    actions.append(act('Rotate secret', '', async () => {
      const r = await api('POST', scoped(base + '/rotate-secret'));
      await reload(el('div', { class: 'secret', id: 'new-secret' }, el('div', {}, el('strong', {}, 'New signing secret'), ' — shown once; copy it to the receiver now. The old secret keeps signing during the overlap.'),
        el('code', { id: 'new-secret-value' }, r.secret)));
    }, 'btn-rotate'));
  }
  const since = el('input', { type: 'datetime-local', id: 'recover-since', value: localInput(new Date(Date.now() - 3600e3)) });
  const recover = el('div', { class: 'actions' }, el('span', {}, 'Recover failed deliveries created since'), since,
    act('Recover', '', async () => {
      const r = await api('POST', scoped(base + '/recover'), { since: new Date(since.value).toISOString() });
      notice.replaceChildren(flash('ok', `${r.recovered} failed deliveries queued again.`));
    }, 'btn-recover'));
  const hl = h.health;
  const dl = (pairs) => el('dl', { class: 'grid2' }, pairs.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  shell('endpoints',
    el('p', { class: 'small' }, el('a', { href: '#/endpoints' }, '← Endpoints')),
    el('h1', {}, hookName(h.id), ' ', health(h).pill), el('p', { class: 'sub mono' }, h.url),
    notice, actions,
    el('div', { class: 'panel' }, recover),
    el('h2', {}, 'Health'),
    el('div', { class: 'panel' }, dl([
      ['Failing since', hl.failing_since ? `${fmtTime(hl.failing_since)} (${ago(hl.failing_since)})` : '—'],
      ['Consecutive failures', String(hl.consecutive_failures)],
      ['Last success', hl.last_success_at ? `${fmtTime(hl.last_success_at)} (${ago(hl.last_success_at)})` : '—'],
      ['Last failure', hl.last_failure_at ? fmtTime(hl.last_failure_at) : '—'],
      hl.disabled && ['Disabled', `${fmtTime(hl.disabled_at)}: ${hl.disabled_reason}`],
      ['Concurrency', runtimeText((rt.data || {})[h.id])],
    ])),
    el('h2', {}, 'Configuration'),
    el('div', { class: 'panel' }, dl([
      ['ID', el('span', { class: 'mono' }, h.id)],
      ['Source', h.source === 'config' ? 'config file (read-only here)' : 'admin API'],
      ['Events', (h.events || []).join(', ')],
      ['Tenant', h.tenant || '—'],
      ['Signing', h.signing],
      h.ordering && ['Ordering', h.ordering],
      ['Secret', h.secret ? el('span', { class: 'mono', id: 'secret-hint' }, h.secret) : '—'],
      h.headers && ['Headers', Object.keys(h.headers).join(', ')],
      h.header_names && ['Headers', h.header_names.join(', ')],
      h.created_at && ['Created', fmtTime(h.created_at)],
    ])),
    el('h2', {}, 'Batching'), batchPanel(h, base, reload),
    el('p', {}, el('a', { href: '#/deliveries?endpoint_id=' + encodeURIComponent(h.id), id: 'endpoint-deliveries' }, 'Deliveries to this endpoint →')));
}

// batchPanel shows how an endpoint's requests carry events and, for an
// API webhook, changes it (PATCH "batch"; fields left empty take the
// defaults, "One event per request" sends false). The API's validation
// errors are shown as it gives them.
function batchPanel(h, base, reload) {
  const bodies = el('a', { href: '#/events?endpoint=' + encodeURIComponent(h.id), id: 'endpoint-bodies' }, h.batch ? 'The batch body of each event →' : 'The body of each event →');
  const about = el('p', { class: 'small' }, h.batch
    ? 'One signed request carries many events as {"type": "batch", "id", "timestamp", "data": [...]}; receivers deduplicate by the event ids inside (data[].id).'
    : 'Each request carries one event.', ' ', bodies);
  if (h.source !== 'api') {
    return el('div', { class: 'panel', id: 'batch-panel' }, el('p', {}, el('strong', { id: 'endpoint-batch' }, batchText(h.batch))), about,
      el('p', { class: 'small' }, "Set by the endpoint's batch block in the config file."));
  }
  const b = h.batch || {};
  const msg = el('div', { id: 'batch-message' });
  const input = (id, value, placeholder, size) => el('input', { id, value: value === undefined ? '' : String(value), placeholder, size });
  const events = input('batch-max-events', b.max_events, 'default', 8);
  const bytes = input('batch-max-bytes', b.max_bytes === undefined ? '' : sizeText(b.max_bytes), 'default', 8);
  const wait = input('batch-max-wait', b.max_wait, 'default', 8);
  const patch = async (batch, done) => {
    try {
      await api('PATCH', scoped(base), { batch });
      await reload(flash('ok', done));
    } catch (err) {
      if (err.status === 401) return;
      msg.replaceChildren(flash('bad', err.message));
    }
  };
  const form = el('form', { class: 'filters', id: 'batch-form', onsubmit: async (e) => {
    e.preventDefault();
    const batch = {};
    const n = events.value.trim();
    // A whole number goes as a number; anything else as typed, for the API to refuse.
    if (n) batch.max_events = /^-?[0-9]+$/.test(n) ? Number(n) : n;
    if (bytes.value.trim()) batch.max_bytes = bytes.value.trim();
    if (wait.value.trim()) batch.max_wait = wait.value.trim();
    await patch(batch, 'Batching saved.');
  } },
  el('label', {}, 'Max events', events), el('label', {}, 'Max bytes', bytes), el('label', {}, 'Max wait', wait),
  el('button', { class: 'primary', type: 'submit', id: 'btn-batch-save' }, h.batch ? 'Save batching' : 'Send in batches'),
  h.batch ? el('button', { type: 'button', id: 'btn-batch-off', onclick: () => patch(false, 'Batching off: one event per request.') }, 'One event per request') : null);
  return el('div', { class: 'panel', id: 'batch-panel' }, el('p', {}, el('strong', { id: 'endpoint-batch' }, batchText(h.batch))), about, msg, form,
    el('p', { class: 'small' }, 'An empty field takes the default of a batch block. Max bytes is written like 512KB or 1MB, max wait like 50ms or 1s.'));
}

function localInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// ---- deliveries ------------------------------------------------------------

async function pageDeliveries(parts, query) {
  if (parts[0]) return pageDelivery(parts[0]);
  const [hooks, events] = await Promise.all([loadHooks(), api('GET', '/v1/events')]);
  const params = new URLSearchParams();
  for (const k of ['endpoint_id', 'event_type', 'status', 'tenant']) if (query.get(k)) params.set(k, query.get(k));
  for (const k of ['since', 'until']) if (query.get(k)) params.set(k, new Date(query.get(k)).toISOString());
  params.set('limit', '50');
  const select = (id, label, opts, value) => el('label', {}, label, el('select', { id }, el('option', { value: '' }, 'any'),
    opts.map(([v, t]) => el('option', { value: v, selected: v === value }, t))));
  const f = el('form', { class: 'filters', id: 'delivery-filters', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of ['endpoint_id', 'event_type', 'status', 'tenant', 'since', 'until']) {
      const inp = document.getElementById('f-' + k);
      if (inp && inp.value) q.set(k, inp.value);
    }
    location.hash = '#/deliveries?' + q.toString();
  } },
  select('f-endpoint_id', 'Endpoint', hooks.map((h) => [h.id, hookName(h.id)]), query.get('endpoint_id')),
  select('f-event_type', 'Event type', events.data.map((e) => [e.name, e.name]), query.get('event_type')),
  select('f-status', 'Status', [['pending', 'pending'], ['delivered', 'delivered'], ['failed', 'failed']], query.get('status')),
  (state.tenant || state.viewTenant) ? null : el('label', {}, 'Tenant', el('input', { id: 'f-tenant', value: query.get('tenant') || '', size: 10 })),
  el('label', {}, 'Created since', el('input', { type: 'datetime-local', id: 'f-since', value: query.get('since') || '' })),
  el('label', {}, 'Created before', el('input', { type: 'datetime-local', id: 'f-until', value: query.get('until') || '' })),
  el('button', { class: 'primary', type: 'submit', id: 'f-apply' }, 'Filter'));
  const tbody = el('tbody', { id: 'deliveries-body' });
  const more = el('div', { class: 'actions' });
  shell('deliveries', el('h1', {}, 'Deliveries'), el('p', { class: 'sub' }, 'Every event bound for an endpoint, newest first. Open one to see its attempts.'), f,
    el('table', { id: 'deliveries-table' }, el('thead', {}, el('tr', {}, ['Status', 'Created', 'Event', 'Endpoint', 'Tenant', 'Attempts', 'Last answer'].map((t) => el('th', {}, t)))), tbody), more);
  const load = async (cursor) => {
    if (cursor) params.set('cursor', cursor);
    const res = await api('GET', scoped('/v1/deliveries?' + params.toString()));
    if (!res.data.length && !cursor) tbody.append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'No deliveries match.')));
    for (const d of res.data) {
      tbody.append(el('tr', { class: 'click', 'data-id': d.id, onclick: () => { location.hash = '#/deliveries/' + d.id; } },
        el('td', {}, statusPill(d.status)), el('td', {}, fmtTime(d.created_at)), el('td', { class: 'mono' }, d.event_type),
        el('td', {}, hookName(d.endpoint_id)), el('td', {}, d.tenant || '—'), el('td', { class: 'num' }, String(d.attempts.length)),
        el('td', {}, d.last_status ? String(d.last_status) : '', d.last_error && d.last_error !== 'status ' + d.last_status ? el('div', { class: 'small' }, d.last_error) : null)));
    }
    more.replaceChildren(res.next_cursor ? el('button', { id: 'load-more', onclick: () => load(res.next_cursor) }, 'Load more') : '');
  };
  await load('');
}

async function pageDelivery(id) {
  const [d] = await Promise.all([api('GET', scoped('/v1/deliveries/' + encodeURIComponent(id))), state.hooks ? null : loadHooks()]);
  // The retry notice stays while the delivery waits for its new attempt,
  // across the page's refreshes.
  if (state.retried && (state.retried !== id || d.status !== 'pending')) state.retried = '';
  const notice = el('div', { id: 'delivery-notice' }, state.retried === id ? flash('ok', 'Queued for a new attempt now.') : '');
  const retry = el('button', { class: 'primary', id: 'btn-retry', onclick: async () => {
    retry.disabled = true;
    try {
      await api('POST', scoped('/v1/deliveries/' + encodeURIComponent(id) + '/retry'));
      state.retried = id;
      await pageDelivery(id);
    } catch (err) { notice.replaceChildren(flash('bad', err.message)); retry.disabled = false; }
  } }, 'Retry now');
  // The body exactly as sent: formatted token by token (numbers as
  // written), or raw when it is not JSON.
  const sent = typeof d.body === 'string' ? d.body : JSON.stringify(d.payload);
  const formatted = formatJSON(sent);
  const dl4 = (pairs) => el('dl', { class: 'grid4' }, pairs.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const attempts = d.attempts.length ? d.attempts.map((a) => el('div', { class: 'attempt', 'data-attempt': a.number },
    el('header', {}, el('strong', {}, 'Attempt ' + a.number), attemptPill(a), el('span', { class: 'small' }, fmtTime(a.attempted_at)), el('span', { class: 'small' }, a.duration_ms.toFixed(1) + ' ms')),
    a.error && a.error !== 'status ' + a.status_code ? flash('bad', a.error) : null,
    el('h3', {}, 'Response body (first 2 KiB)'), el('pre', { class: 'response' }, a.response || '(empty)'),
    a.request_headers ? el('details', { open: a === d.attempts[0] }, el('summary', {}, 'Request headers'),
      el('table', { class: 'headers' }, el('tbody', {}, Object.keys(a.request_headers).sort().map((k) => el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, a.request_headers[k])))))) : null)) : [el('div', { class: 'panel empty' }, 'No attempt logged yet.')];
  shell('deliveries',
    el('p', { class: 'small' }, el('a', { href: '#/deliveries' }, '← Deliveries')),
    el('h1', {}, d.event_type, ' ', el('span', { id: 'delivery-status' }, statusPill(d.status))), el('p', { class: 'sub mono' }, d.id),
    notice, el('div', { class: 'actions' }, retry),
    el('div', { class: 'panel' }, dl4([
      ['Endpoint', el('a', { href: '#/endpoints/' + encodeURIComponent(d.endpoint_id) }, hookName(d.endpoint_id))],
      ['Event', el('span', { class: 'mono' }, d.event_id)],
      d.tenant && ['Tenant', d.tenant],
      d.key && ['Ordering key', d.key],
      ['Event time', fmtTime(d.event_time)],
      ['Created', fmtTime(d.created_at)],
      d.next_attempt_at && ['Next attempt', fmtTime(d.next_attempt_at)],
      ['Commit LSN', d.commit_lsn],
    ])),
    el('h2', {}, `Attempts (${d.attempts.length}), newest first`), el('div', { id: 'attempts' }, attempts),
    el('h2', {}, 'Request body (the same on every attempt)'), el('pre', { id: 'payload' }, formatted === null ? sent : formatted),
    formatted !== null && formatted !== sent ? el('details', { id: 'payload-raw-box' }, el('summary', {}, 'Exactly as sent'), el('pre', { id: 'payload-raw' }, sent)) : null);
  if (d.status === 'pending') {
    const t = setTimeout(() => { if (parseHash().parts[1] === id) pageDelivery(id).catch(() => {}); }, 1000);
    state.cleanup.push(() => clearTimeout(t));
  }
}

// ---- failed evaluations ------------------------------------------------------

function evaluationPill(s) {
  return pill({ failed: 'bad', replay_requested: 'info', replaying: 'info', replayed: 'ok' }[s] || 'muted', s.replace('_', ' '));
}

// pageEvaluations lists failed evaluations (GET /v1/evaluations, admins
// only) and replays them after a fix: one, or every failed one of the
// filter (POST /v1/evaluations/…/replay).
async function pageEvaluations(parts, query) {
  const params = new URLSearchParams();
  for (const k of ['rule', 'table', 'status']) if (query.get(k)) params.set(k, query.get(k));
  params.set('limit', '50');
  const notice = el('div', { id: 'evaluations-notice' });
  const f = el('form', { class: 'filters', id: 'evaluation-filters', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of ['rule', 'table', 'status']) {
      const inp = document.getElementById('fe-' + k);
      if (inp && inp.value) q.set(k, inp.value);
    }
    location.hash = '#/evaluations?' + q.toString();
  } },
  el('label', {}, 'Rule', el('input', { id: 'fe-rule', value: query.get('rule') || '', size: 18 })),
  el('label', {}, 'Table', el('input', { id: 'fe-table', value: query.get('table') || '', size: 18, placeholder: 'schema.table' })),
  el('label', {}, 'Status', el('select', { id: 'fe-status' }, el('option', { value: '' }, 'any'),
    ['failed', 'replay_requested', 'replaying', 'replayed'].map((v) => el('option', { value: v, selected: v === query.get('status') }, v.replace('_', ' '))))),
  el('button', { class: 'primary', type: 'submit', id: 'fe-apply' }, 'Filter'));
  const replayAll = el('button', { id: 'btn-replay-all', onclick: async () => {
    replayAll.disabled = true;
    try {
      const body = { rule: query.get('rule') || '', table: query.get('table') || '' };
      if (!body.rule && !body.table) body.all = true;
      const r = await api('POST', '/v1/evaluations/replay', body);
      await pageEvaluations(parts, query);
      document.getElementById('evaluations-notice').replaceChildren(flash('ok', `${r.requested} failed evaluations queued for replay.`));
    } catch (err) { notice.replaceChildren(flash('bad', err.message)); replayAll.disabled = false; }
  } }, 'Replay every failed one of this filter');
  const tbody = el('tbody', { id: 'evaluations-body' });
  const more = el('div', { class: 'actions' });
  shell('evaluations', el('h1', {}, 'Failed evaluations'),
    el('p', { class: 'sub' }, 'Rules that failed on a row, and endpoint bodies that could not be rendered: the change is kept. Fix the rule or the body in the config, restart walhook, then replay: the events go out under the ids they would have had.'),
    f, notice, el('div', { class: 'actions' }, replayAll),
    el('table', { id: 'evaluations-table' }, el('thead', {}, el('tr', {}, ['Status', 'Created', 'Rule', 'Change', 'Error', 'Row', ''].map((t) => el('th', {}, t)))), tbody), more);
  const row = (v) => {
    const btn = v.replayable && v.status !== 'replaying' && v.status !== 'replay_requested'
      ? el('button', { class: 'replay', onclick: async (e) => {
        e.target.disabled = true;
        try {
          const n = await api('POST', '/v1/evaluations/' + v.id + '/replay');
          tr.replaceWith(row(n));
          notice.replaceChildren(flash('ok', `Evaluation ${v.id} queued for replay.`));
        } catch (err) { notice.replaceChildren(flash('bad', err.message)); e.target.disabled = false; }
      } }, 'Replay')
      : (v.replayable ? '' : el('span', { class: 'small' }, 'not replayable'));
    const done = v.status === 'replayed' ? el('div', { class: 'small' }, `${v.replay_events} events · ${fmtTime(v.replayed_at)}`) : null;
    const tr = el('tr', { 'data-id': String(v.id) },
      el('td', {}, evaluationPill(v.status), done), el('td', {}, fmtTime(v.created_at)),
      el('td', { class: 'mono' }, v.rule),
      el('td', {}, el('div', {}, v.table, ' ', v.op ? pill('info', v.op) : null), el('div', { class: 'small mono' }, `${v.commit_lsn} #${v.position}`)),
      el('td', { class: 'small' }, v.error),
      el('td', {}, el('details', {}, el('summary', {}, 'row'), el('pre', {}, pretty(v.row)), v.old ? el('h3', {}, 'old') : null, v.old ? el('pre', {}, pretty(v.old)) : null)),
      el('td', {}, btn));
    return tr;
  };
  const load = async (cursor) => {
    if (cursor) params.set('cursor', cursor);
    const res = await api('GET', '/v1/evaluations?' + params.toString());
    if (!res.data.length && !cursor) tbody.append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'No failed evaluations match.')));
    for (const v of res.data) tbody.append(row(v));
    more.replaceChildren(res.next_cursor ? el('button', { id: 'evaluations-more', onclick: () => load(res.next_cursor) }, 'Load more') : '');
  };
  await load('');
}

// ---- events ---------------------------------------------------------------

// pageEvents shows the event catalogue; with ?endpoint= (picked in the
// page) each event's body as that endpoint receives it, a batch body
// included (GET /v1/events/{name}?endpoint=).
async function pageEvents(parts, query) {
  const endpoint = (query && query.get('endpoint')) || '';
  const [res, hooks] = await Promise.all([api('GET', '/v1/events'), loadHooks()]);
  const hook = endpoint ? hooks.find((h) => h.id === endpoint) : null;
  const suffix = hook ? '?endpoint=' + encodeURIComponent(hook.id) : '';
  const details = await Promise.all(res.data.map((e) => api('GET', '/v1/events/' + encodeURIComponent(e.name) + suffix).catch(() => null)));
  const tenant = state.tenant || state.viewTenant;
  const picker = el('form', { class: 'filters', id: 'events-endpoint-form' },
    el('label', {}, 'Bodies as received by', el('select', { id: 'events-endpoint', onchange: (e) => {
      location.hash = '#/events' + (e.target.value ? '?endpoint=' + encodeURIComponent(e.target.value) : '');
    } }, el('option', { value: '' }, 'any webhook (the default body)'),
    hooks.map((h) => el('option', { value: h.id, selected: h.id === endpoint }, hookName(h.id) + (h.batch ? ' (batches)' : ''))))));
  const about = hook ? el('div', { class: 'panel', id: 'events-endpoint-about' },
    el('strong', {}, hookName(hook.id)), ' — ', batchText(hook.batch), '. ',
    hook.batch ? 'Each request body is a batch whose data lists the events below, in order, possibly mixed with the other events it subscribes to.' : '') : null;
  shell('events', el('h1', {}, 'Events'), el('p', { class: 'sub' }, tenant ? 'The events your webhooks can subscribe to, with the body each one receives.' : 'The event catalogue: which changes become which events.'),
    picker, endpoint && !hook ? flash('bad', `There is no endpoint ${endpoint} to show bodies for.`) : about,
    el('div', { id: 'events-list' }, res.data.length ? res.data.map((e, i) => {
      const x = details[i] || {};
      // The body the picked endpoint receives; when it cannot be read, the default.
      const mine = hook && details[i] ? (x.bodies || []) : null;
      return el('div', { class: 'panel event' + (mine && !mine.length ? ' off' : ''), 'data-event': e.name },
        el('h3', {}, e.name), e.description ? el('p', { class: 'small' }, e.description) : null,
        e.source === 'outbox' ? el('dl', { class: 'grid2' }, el('dt', {}, 'Outbox table'), el('dd', { class: 'mono' }, e.table),
          el('dt', {}, 'Written by'), el('dd', {}, 'the application (an outbox row with this event_type)')) :
        e.table ? el('dl', { class: 'grid2' }, el('dt', {}, 'Table'), el('dd', { class: 'mono' }, e.table),
          el('dt', {}, 'Operations'), el('dd', {}, (e.ops || []).map((o) => pill('info', o)), ' '),
          el('dt', {}, 'When'), el('dd', { class: 'mono' }, e.when || x.when || 'every change')) : null,
        mine ? (mine.length ? eventBody(mine[0], hookName(endpoint)) : el('p', { class: 'small' }, hookName(endpoint) + ' does not subscribe to this event.')) : [
          x.schema ? el('details', {}, el('summary', {}, 'JSON Schema'), el('pre', {}, pretty(x.schema))) : null,
          x.example ? el('details', {}, el('summary', {}, 'Example'), el('pre', {}, pretty(x.example))) : null,
          ...(x.bodies || []).map((b) => el('details', { class: 'body' }, el('summary', {}, (b.batch ? 'Batch body of ' : 'Body of ') + b.endpoint), eventBody(b, b.endpoint)))]);
    }) : el('div', { class: 'panel empty' }, 'No events are defined.')));
}

// eventBody shows one endpoint's body of an event: for a batch, what it
// holds, a sample and the batch's JSON Schema (the one
// `walhook events --schema --endpoint` prints).
function eventBody(b, name) {
  if (!b.batch) {
    return el('div', { class: 'endpoint-body' },
      el('details', {}, el('summary', {}, 'JSON Schema of the body ' + name + ' receives'), el('pre', {}, pretty(b.schema))),
      el('details', {}, el('summary', {}, 'Example'), el('pre', {}, pretty(b.example))));
  }
  const data = b.schema && b.schema.properties && b.schema.properties.data;
  const most = data && data.maxItems;
  return el('div', { class: 'endpoint-body batch' },
    el('p', {}, pill('info', 'batch'), ' ', name + ' receives this event in batches' + (most ? ' of up to ' + most + ' events' : '') +
      ': {"type": "batch", "id", "timestamp", "data": [...]}, one event body per item of data.'),
    el('h4', {}, 'Sample batch body'), el('pre', { class: 'batch-sample' }, pretty(b.example)),
    el('details', {}, el('summary', {}, 'JSON Schema of the batch body'), el('pre', { class: 'batch-schema' }, pretty(b.schema))));
}

// ---- live tail ------------------------------------------------------------

async function pageTail() {
  if (!state.hooks) await loadHooks();
  const tbody = el('tbody', { id: 'tail-body' });
  const dot = el('span', { class: 'dot', id: 'tail-dot' });
  const status = el('span', { class: 'small', id: 'tail-status' }, 'connecting…');
  const typeFilter = el('input', { id: 'tail-filter', placeholder: 'filter: event type or endpoint', size: 28 });
  const failuresOnly = el('input', { type: 'checkbox', id: 'tail-failures' });
  let paused = false;
  let held = [];
  const pause = el('button', { id: 'tail-pause', onclick: () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) { held.forEach(show); held = []; }
    status.textContent = paused ? 'paused' : 'live';
  } }, 'Pause');
  const empty = el('tr', { id: 'tail-empty' }, el('td', { colspan: 7, class: 'empty' }, 'Waiting for deliveries…'));
  tbody.append(empty);
  shell('tail', el('h1', {}, 'Live tail'), el('p', { class: 'sub' }, 'Delivery attempts as they happen.'),
    el('div', { class: 'tailbar' }, dot, status, pause, typeFilter, el('label', { class: 'small' }, failuresOnly, ' failures only')),
    el('table', { id: 'tail-table' }, el('thead', {}, el('tr', {}, ['Time', 'Answer', 'Event', 'Endpoint', 'Attempt', 'Duration', 'Delivery'].map((t) => el('th', {}, t)))), tbody));
  const matches = (ev) => {
    if (failuresOnly.checked && ev.ok) return false;
    const q = typeFilter.value.trim().toLowerCase();
    return !q || ev.event_type.toLowerCase().includes(q) || hookName(ev.endpoint_id).toLowerCase().includes(q) || ev.endpoint_id.toLowerCase().includes(q);
  };
  // Every row is kept with its attempt; the filter hides and shows rows,
  // those already shown included.
  const refilter = () => {
    for (const row of tbody.querySelectorAll('tr[data-delivery]')) row.hidden = !matches(row.attempt);
  };
  typeFilter.addEventListener('input', refilter);
  failuresOnly.addEventListener('change', refilter);
  const show = (ev) => {
    empty.remove();
    const a = { ok: ev.ok, status_code: ev.status_code };
    const row = el('tr', { class: 'fresh', 'data-delivery': ev.delivery_id },
      el('td', {}, fmtClock(ev.attempted_at)), el('td', {}, attemptPill(a)), el('td', { class: 'mono' }, ev.event_type),
      el('td', {}, hookName(ev.endpoint_id)), el('td', { class: 'num' }, String(ev.attempt)), el('td', { class: 'num' }, ev.duration_ms.toFixed(1) + ' ms'),
      el('td', {}, el('a', { href: '#/deliveries/' + ev.delivery_id, class: 'mono' }, ev.delivery_id.slice(0, 14) + '…')));
    row.attempt = ev;
    row.hidden = !matches(ev);
    tbody.prepend(row);
    while (tbody.children.length > 200) tbody.lastChild.remove();
  };
  const es = new EventSource(scoped('/ui/api/tail'));
  es.onopen = () => { dot.classList.add('live'); status.textContent = paused ? 'paused' : 'live'; };
  es.onerror = () => { dot.classList.remove('live'); status.textContent = 'reconnecting…'; };
  es.addEventListener('attempt', (m) => {
    const ev = JSON.parse(m.data);
    if (paused) { held.push(ev); if (held.length > 500) held.shift(); status.textContent = `paused · ${held.length} new`; } else show(ev);
  });
  es.addEventListener('dropped', (m) => { status.textContent = `live · ${m.data} attempts missed (browser too slow)`; });
  es.addEventListener('ended', (m) => {
    es.close();
    dot.classList.remove('live');
    status.textContent = 'ended: ' + m.data;
    state.csrf = '';
    renderLogin('Your session has ended (' + m.data + '); log in again.');
  });
  state.cleanup.push(() => es.close());
}

// ---- start ----------------------------------------------------------------

window.addEventListener('hashchange', () => { if (state.csrf && !location.hash.startsWith('#token=')) route(); });

(async function start() {
  // A login link carries the token in the fragment, which never leaves
  // the browser; it is used once and removed from the address bar.
  if (location.hash.startsWith('#token=')) {
    const token = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, '', location.pathname);
    try { await login(token); return; } catch (err) { renderLogin(err.message); return; }
  }
  try {
    const s = await api('GET', '/ui/api/session');
    state.csrf = s.csrf_token;
    state.tenant = s.tenant;
    route();
  } catch (err) {
    renderLogin(err.status === 401 ? '' : err.message);
  }
}());
