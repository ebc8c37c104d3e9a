import { createHash } from 'node:crypto';
import { STATE_NAMES } from '../../machines/states.js';

/**
 * The live page: one HTML document with its style and script inline (no
 * build step, nothing fetched but `/events`). The script only ever sets
 * `textContent`, so nothing from a record is parsed as HTML.
 */

const STYLE = `
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --bg2: rgba(127,127,127,.08); }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 16px 20px; max-width: 1200px; }
header { display: flex; align-items: baseline; gap: 12px; }
h1 { font-size: 20px; margin: 0 0 12px; }
h2 { font-size: 15px; margin: 20px 0 8px; }
#status { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #fde68a; color: #111; }
#status.up { background: #bbf7d0; }
#instance { font-size: 12px; color: #555; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; }
.count { min-width: 96px; padding: 8px 12px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg2); }
.count b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.count span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.id { font-family: ui-monospace, monospace; font-size: 12px; }
.empty td { color: var(--muted); font-style: italic; }
.st { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; background: var(--bg2); }
.st-ringing { background: #dbeafe; color: #1e3a8a; }
.st-rejecting { background: #fef3c7; color: #78350f; }
.st-rejected { background: #dcfce7; color: #14532d; }
.st-failed, .st-timedOut { background: #fee2e2; color: #7f1d1d; }
.refused { background: #fce7f3; color: #831843; }
.late { color: #b91c1c; font-weight: 600; }
#latency { display: flex; gap: 16px; }
#latency div { color: var(--muted); }
#latency b { color: CanvasText; font-variant-numeric: tabular-nums; }
`;

const SCRIPT = `
'use strict';
var STATES = ${JSON.stringify(STATE_NAMES)};
var calls = new Map();
var recent = [];
var offset = 0;
var RECENT = 50;

function $(id) { return document.getElementById(id); }
function el(tag, text, cls) {
  var node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function stateTag(state) {
  return el('span', state, 'st st-' + state);
}
function clock(iso) {
  var d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
function seconds(s) {
  if (s === null || s === undefined) return '–';
  return s < 1 ? Math.round(s * 1000) + ' ms' : s.toFixed(2) + ' s';
}
function left(deadline) {
  if (deadline === null || deadline === undefined) return { text: '–', late: false };
  var ms = deadline - (Date.now() + offset);
  return { text: ms <= 0 ? 'due' : (ms / 1000).toFixed(1) + ' s', late: ms <= 0 };
}

function renderCounts(counts) {
  var box = $('counts');
  box.replaceChildren();
  STATES.forEach(function (s) {
    var tile = el('div', null, 'count');
    tile.dataset.state = s;
    tile.append(el('b', counts[s] || 0), el('span', s));
    box.append(tile);
  });
}
function renderLatency(l) {
  var box = $('latency');
  box.replaceChildren();
  [['rejects', l.count], ['last', seconds(l.last)], ['p50', seconds(l.p50)], ['p95', seconds(l.p95)], ['max', seconds(l.max)]]
    .forEach(function (pair) {
      var d = el('div', pair[0] + ' ');
      d.append(el('b', pair[1]));
      box.append(d);
    });
}
function renderCalls() {
  var body = $('calls');
  body.replaceChildren();
  if (calls.size === 0) {
    var tr = el('tr', null, 'empty');
    var td = el('td', 'no calls in flight');
    td.colSpan = 6;
    tr.append(td);
    body.append(tr);
    return;
  }
  Array.from(calls.values())
    .sort(function (a, b) { return (a.deadline || 0) - (b.deadline || 0); })
    .forEach(function (c) {
      var tr = el('tr');
      tr.dataset.callId = c.callId;
      tr.dataset.state = c.state;
      var st = el('td');
      st.append(stateTag(c.state));
      var t = left(c.deadline);
      var due = el('td', t.text, 'left' + (t.late ? ' late' : ''));
      due.dataset.deadline = c.deadline === null ? '' : String(c.deadline);
      tr.append(el('td', c.callId, 'id'), st, el('td', c.reason || ''), el('td', c.attempts === undefined ? '' : c.attempts), due, el('td', clock(c.since)));
      body.append(tr);
    });
}
function renderRecent() {
  var body = $('recent');
  body.replaceChildren();
  if (recent.length === 0) {
    var tr = el('tr', null, 'empty');
    var td = el('td', 'nothing yet');
    td.colSpan = 5;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (var i = recent.length - 1; i >= 0; i--) {
    var r = recent[i];
    var row = el('tr');
    row.dataset.callId = r.callId;
    row.dataset.state = r.state;
    var change = el('td');
    if (r.refused) {
      row.dataset.refused = r.refused.type;
      change.append(el('span', 'refused ' + r.refused.type, 'st refused'), el('span', ' in '), stateTag(r.state));
    } else {
      if (r.previous) change.append(stateTag(r.previous), el('span', ' → '));
      change.append(stateTag(r.state));
    }
    var detail = r.refused ? r.refused.why : [r.reason, r.attempts !== undefined ? 'attempt ' + r.attempts : '', r.error || ''].filter(Boolean).join(' · ');
    row.append(el('td', clock(r.at)), el('td', r.callId, 'id'), change, el('td', detail));
    body.append(row);
  }
}
function tick() {
  var cells = document.querySelectorAll('#calls td.left');
  cells.forEach(function (td) {
    var t = left(td.dataset.deadline ? Number(td.dataset.deadline) : null);
    td.textContent = t.text;
    td.classList.toggle('late', t.late);
  });
}

function connect() {
  var token = new URLSearchParams(location.search).get('token');
  var source = new EventSource(token ? 'events?token=' + encodeURIComponent(token) : 'events');
  var status = $('status');
  source.addEventListener('open', function () { status.textContent = 'live'; status.className = 'up'; });
  source.addEventListener('error', function () { status.textContent = 'reconnecting…'; status.className = ''; });
  source.addEventListener('snapshot', function (e) {
    var s = JSON.parse(e.data);
    offset = s.now - Date.now();
    calls = new Map(s.calls.map(function (c) { return [c.callId, c]; }));
    recent = s.recent.slice(-RECENT);
    $('instance').textContent = s.instance || '';
    renderCounts(s.counts);
    renderLatency(s.latency);
    renderCalls();
    renderRecent();
  });
  source.addEventListener('instance', function (e) {
    $('instance').textContent = JSON.parse(e.data).instance;
  });
  source.addEventListener('record', function (e) {
    var u = JSON.parse(e.data);
    offset = u.now - Date.now();
    if (u.call) calls.set(u.call.callId, u.call);
    else calls.delete(u.record.callId);
    recent.push(u.record);
    if (recent.length > RECENT) recent.shift();
    renderCounts(u.counts);
    renderLatency(u.latency);
    renderCalls();
    renderRecent();
  });
}
connect();
setInterval(tick, 200);
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Only the inline style and script above, and `/events` on the same origin. */
export const LIVE_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const LIVE_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>callgate · live calls</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>callgate · live calls</h1><span id="status">connecting…</span><span id="instance"></span></header>
<section>
<h2>Calls per state</h2>
<div id="counts" class="counts"></div>
</section>
<section>
<h2>Reject latency <small>(rejecting → rejected)</small></h2>
<div id="latency"></div>
</section>
<section>
<h2>In flight</h2>
<table>
<thead><tr><th>call</th><th>state</th><th>reason</th><th>attempts</th><th>time left</th><th>since</th></tr></thead>
<tbody id="calls"></tbody>
</table>
</section>
<section>
<h2>Recent transitions and refused commands</h2>
<table>
<thead><tr><th>at</th><th>call</th><th>change</th><th>detail</th></tr></thead>
<tbody id="recent"></tbody>
</table>
</section>
<script>${SCRIPT}</script>
</body>
</html>
`;
