'use strict';
/* dagtrio live view: follows one run over server-sent events and steers it.
 *
 * The wire contract is README.rst's "Seeing and steering a run in the browser". The
 * shape of this file:
 *   - state (S): a snapshot, then the server's updates (a few a second, each what
 *     changed since the last), applied cheaply (Map look-ups, counters, dirty flags);
 *   - one requestAnimationFrame callback (frame) does every DOM and canvas update, each
 *     part at most as often as its TASKS entry says, so a burst of thousands of events
 *     costs a few redraws, not thousands;
 *   - the graph canvas (branch → level column → action group), the timeline canvas
 *     (lanes packed greedily), and DOM panels: branches, held, details, log.
 */

// ------------------------------------------------------------------ constants
// In the order of dagtrio.NodeStatus: an update's status codes index it.
const STATUSES = ['pending', 'ready', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'];
const EVENT_TYPES = ['NodeAdded', 'NodeStarted', 'NodeProgress', 'NodeCompleted', 'NodeFailed',
  'NodeRetrying', 'NodeCancelled', 'NodeSkipped', 'BranchPaused', 'BranchResumed',
  'BranchCancelled', 'CommandRejected', 'HookFailed', 'RunIdle', 'RunResumed', 'CustomEvent'];
// A second cue besides colour, drawn in every node box and written in the panels.
const GLYPH = { pending: '·', ready: '○', running: '▶', succeeded: '✓', failed: '✗',
  cancelled: '⊘', skipped: '↷' };
const LIGHT_INK = new Set(['running', 'succeeded', 'failed']); // dark fills get white labels
const TOKEN_KEY = 'dagtrio-token';
const AGGREGATE_OVER = 24;     // a (branch, level, action) group larger than this is one box
const ALL_EDGES_BELOW = 1500;  // more edges than this: draw only the selected node's
const LOG_KEEP = 20000;
const LOG_SHOWN = 300;
const DETAILS_EVERY_MS = 300;  // refetch of the selected node at most this often
const BOX = { w: 150, h: 18, gap: 4, col: 190, agg: 38, aggHead: 16, head: 24, branchGap: 14, pad: 12 };
const GANTT = { axis: 20, padL: 8, padR: 10, minLane: 3, maxLane: 14 };
const FONT = '11px system-ui, sans-serif';
const BOLD = '600 11px system-ui, sans-serif';
const SELECTED_BAR = '#00a3b8'; // unlike every status colour
// View bookkeeping lives under a symbol, so the node objects in window.dagtrio.nodes stay
// plain data (JSON.stringify-able, no cycles through dependents and boxes).
const VIEW = Symbol('view');

const $ = (sel) => document.querySelector(sel);

/** h('div', {className: 'row', dataset: {node: id}, ariaLive: 'polite'}, child, 'text') */
function h(tag, props = null, ...children) {
  const { dataset, onclick, ...rest } = props ?? {};
  const e = Object.assign(document.createElement(tag), rest);
  if (dataset) Object.assign(e.dataset, dataset);
  if (onclick) e.addEventListener('click', onclick); // a listener, not an inline handler (CSP)
  e.append(...children.filter((c) => c != null));
  return e;
}

const el = (tag, className, text) => h(tag, { className: className ?? '' }, text);
const button = (text, props) => h('button', { type: 'button', ...props }, text);

/** Writes text only when it changed: even an unchanged write costs a relayout. */
const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };

const zeroCounts = () => Object.fromEntries(STATUSES.map((s) => [s, 0]));
const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));

// ------------------------------------------------------------------ state
const S = {
  token: null,
  run: null,               // the last snapshot's run object, kept current by events
  nodes: new Map(),        // id -> node; the same Map for the page's whole life
  order: [],               // nodes in insertion order (deps always come first)
  branches: new Map(),     // name -> {name, levels: [Map(action -> group)], total, counts}
  edgeCount: 0,
  counts: zeroCounts(),
  held: new Set(), paused: new Set(), cancelled: new Set(), pauseReason: new Map(),
  position: 0, snapshots: 0, firstPaintMs: null, // position: the last update applied
  clockOffset: 0,          // server clock minus ours, in seconds
  log: { items: new Array(LOG_KEEP), start: 0, size: 0 }, // ring buffer
  selected: null,
  collapsed: new Set(),    // branch names folded in the graph
  expanded: new Set(),     // aggregate group keys opened by a click
  filter: { kind: '', branch: '', status: '' },
  conn: 'reconnecting', ended: false,
};

const dirty = { layout: true, graph: true, gantt: true, critical: true, header: true,
  branchList: true, held: true, details: true, log: true };

const serverNow = () => Date.now() / 1000 + S.clockOffset;

const controllable = () => !!(S.run?.control && !S.run.read_only && S.run.state !== 'finished');

function runStateText(r) {
  if (!r) return '';
  if (r.state === 'finished') return r.success ? 'succeeded' : 'failed';
  return r.state === 'idle' ? 'waiting' : 'running';
}

// ------------------------------------------------------------------ token and requests
/** The token comes once in the URL; it is kept for the tab and taken out of the address
 *  bar at once, so it does not leak by screen sharing or in a Referer. */
function readToken() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('token');
  if (!fromUrl) {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
  }
  try { sessionStorage.setItem(TOKEN_KEY, fromUrl); } catch { /* storage may be off */ }
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  return fromUrl;
}

const withToken = (path) => (S.token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(S.token)}` : path);

/** POSTs a command for a button; a refusal's `error` goes in `reason` (the button's
 *  neighbour), a success clears it. `after` re-decides the button (an editor's validity). */
async function send(path, body, btn, reason, after) {
  btn.disabled = true;
  try {
    const headers = { 'Content-Type': 'application/json' };
    if (S.token) headers.Authorization = `Bearer ${S.token}`;
    const resp = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
    const data = await resp.json().catch(() => ({}));
    reason.textContent = resp.ok ? '' : (data.error || `request refused (HTTP ${resp.status})`);
  } catch (err) {
    reason.textContent = `request failed: ${err.message}`;
  } finally {
    notice(body, reason);
    btn.disabled = false;
    if (after) after();
  }
}

/**
 * A refusal whose control is gone by the time the answer came (the node it was about
 * was decided meanwhile, by someone else) is said in the banner, so it is never lost.
 */
function notice(body, reason) {
  const el = $('#notice');
  if (!reason.textContent) { el.hidden = true; return; }
  if (reason.isConnected) { shownRefusals.add({ body, reason }); return; }
  const what = body.node_id ?? body.branch ?? '';
  el.textContent = `${body.type ?? 'request'} ${what}: ${reason.textContent}`;
  el.hidden = false;
}

/** Refusals shown beside their control: the page learns of a decision a moment after
 *  it is made (the next update), so a control may vanish after its refusal was shown;
 *  then the refusal moves to the banner (checked after every frame). */
const shownRefusals = new Set();
function keepRefusals() {
  for (const r of shownRefusals) {
    if (!r.reason.textContent) shownRefusals.delete(r);
    else if (!r.reason.isConnected) { shownRefusals.delete(r); notice(r.body, r.reason); }
  }
}

/** A button with its own `.reason` right after it (returned as a pair to append). */
function commandButton(label, action, makeBody, after = null) {
  const reason = h('span', { className: 'reason', ariaLive: 'polite' });
  const btn = button(label, { dataset: { action }, onclick: () => {
    let body;
    try { body = makeBody(); } catch (err) { reason.textContent = err.message; return; }
    send('/api/commands', body, btn, reason, after);
  } });
  return [btn, reason];
}

// ------------------------------------------------------------------ the node model
function newNode(src) {
  const n = {
    id: src.id, action: src.action ?? '', branch: src.branch || 'main', deps: src.deps ?? [],
    status: src.status ?? 'pending', attempts: src.attempts ?? 0,
    started_at: src.started_at ?? null, finished_at: src.finished_at ?? null,
    error: src.error ?? null, held: !!src.held, supplied: !!src.supplied, cached: !!src.cached,
    ended: src.ended ?? null,
  };
  n[VIEW] = { level: 1, dependents: [], group: null, box: null,
    lane: -1, label: null, cpLen: 0, cpPrev: null, cpMark: 0 };
  return n;
}

/** Inserts a node: its level (1 + deepest dep), its dependents links, its group. O(deps). */
function addNode(n) {
  const v = n[VIEW];
  for (const d of n.deps) {
    const dn = S.nodes.get(d);
    if (!dn) continue;
    v.level = Math.max(v.level, dn[VIEW].level + 1);
    dn[VIEW].dependents.push(n);
  }
  S.nodes.set(n.id, n);
  S.order.push(n);
  S.edgeCount += n.deps.length;
  if (!S.branches.has(n.branch)) S.branches.set(n.branch, { name: n.branch, levels: [], total: 0, counts: zeroCounts() });
  const b = S.branches.get(n.branch);
  const groups = b.levels[v.level] ?? (b.levels[v.level] = new Map());
  let g = groups.get(n.action);
  if (!g) groups.set(n.action, g = { key: `${n.branch}\u0000${v.level}\u0000${n.action}`, action: n.action, nodes: [] });
  g.nodes.push(n);
  v.group = g;
  b.total++; b.counts[n.status]++; S.counts[n.status]++;
  dirty.layout = true;
}

/** Changes a node's status, keeping the counters right (the server says every status,
 *  "ready" included). */
function setStatus(n, status) {
  const old = n.status;
  if (old === status) return;
  n.status = status;
  const b = S.branches.get(n.branch);
  S.counts[old]--; S.counts[status]++;
  b.counts[old]--; b.counts[status]++;
}

function setHeld(ids) {
  for (const id of S.held) { const n = S.nodes.get(id); if (n) n.held = false; }
  S.held = new Set(ids);
  for (const id of S.held) { const n = S.nodes.get(id); if (n) n.held = true; }
  syncRunLists();
}

function unhold(n) {
  n.held = false;
  if (S.held.delete(n.id)) syncRunLists();
}

/** window.dagtrio.state is the run object: keep its lists in step with the sets. */
function syncRunLists() {
  if (S.run) Object.assign(S.run, { held: [...S.held], paused: [...S.paused], cancelled: [...S.cancelled] });
  dirty.held = dirty.graph = dirty.branchList = dirty.details = true;
}

function applyRunLists(run) {
  S.paused = new Set(run.paused ?? []);
  S.cancelled = new Set(run.cancelled ?? []);
  setHeld(run.held ?? []);
}

function markAll() {
  for (const k of Object.keys(dirty)) dirty[k] = true;
  schedule();
}

// ------------------------------------------------------------------ snapshot and updates
function applySnapshot(snap) {
  S.nodes.clear(); // the same Map: window.dagtrio.nodes stays valid
  Object.assign(S, { order: [], branches: new Map(), edgeCount: 0, counts: zeroCounts(),
    run: snap.run, position: snap.position });
  if (typeof snap.run.now === 'number') S.clockOffset = snap.run.now - Date.now() / 1000;
  for (const raw of snap.nodes) addNode(newNode(raw));
  applyRunLists(snap.run);
  ganttRebuild();
  S.snapshots++;
  if (S.selected && !S.nodes.has(S.selected)) D.error = 'not in the latest snapshot';
  markAll();
  loadDetails();
}

/** One node's row moved: its status, attempt and times (and, in `more`, its error and
 *  flags). The log gets what the graph says happened: an attempt begun, a success (a
 *  failure, a retry, a cancel or a skip come as events, with their reasons). */
function applyChange(n, status, attempts, startedAt, finishedAt, more, entries) {
  // Plain assignments, no object per row: an update may carry tens of thousands.
  const started = attempts > n.attempts;
  const was = n.status;
  n.attempts = attempts;
  n.started_at = startedAt;
  n.finished_at = finishedAt;
  if (more) {
    n.error = more.error ?? null; n.ended = more.ended ?? null;
    n.supplied = !!more.supplied; n.cached = !!more.cached;
  } else if (n.error !== null || n.ended !== null || n.supplied || n.cached) {
    n.error = null; n.ended = null; n.supplied = false; n.cached = false;
  }
  if (started) {
    // A row keeps the node's first start: a later attempt's is the update's time.
    entries.push({ at: attempts > 1 ? null : startedAt, type: 'NodeStarted', text: startedText(attempts), node: n.id, branch: n.branch });
    ganttResume(n);
  }
  setStatus(n, status);
  if (status === 'succeeded' && was !== 'succeeded') {
    const text = n.supplied ? 'succeeded (outputs supplied)' : n.cached ? 'succeeded (cached)' : 'succeeded';
    entries.push({ at: finishedAt, type: 'NodeCompleted', text, node: n.id, branch: n.branch });
  }
  if (status !== 'running' && n.started_at != null) {
    if (n[VIEW].lane < 0) ganttStart(n); // it started and ended between two updates
    ganttStop(n);
  }
  if (n.id === S.selected) { dirty.details = true; loadDetails(); }
}

const startedTexts = [];
const startedText = (k) => startedTexts[k] ?? (startedTexts[k] = `attempt ${k} started`);

/** An update: the nodes added, the rows that moved, the run, the events in between. */
function onUpdate(ev) {
  const u = JSON.parse(ev.data);
  if (u.seq <= S.position) return; // already in the snapshot
  const ms = (t) => (t == null ? null : u.t0 + t / 1000);
  const entries = [];
  for (const row of u.added) {
    let n = S.nodes.get(row.id); // known already if this page joined after the last look
    if (!n) {
      // Added as it was before anything happened to it; its row then says what did.
      n = newNode({ ...row, status: 'pending', attempts: 0, started_at: null, finished_at: null });
      addNode(n);
      const deps = n.deps.length ? `, after ${n.deps.slice(0, 5).join(', ')}${n.deps.length > 5 ? ` and ${n.deps.length - 5} more` : ''}` : '';
      entries.push({ at: row.started_at, type: 'NodeAdded', text: `added: ${n.action}${deps}`, node: n.id, branch: n.branch });
    }
    const more = { error: row.error, ended: row.ended, supplied: row.supplied, cached: row.cached };
    applyChange(n, row.status, row.attempts, row.started_at, row.finished_at, more, entries);
  }
  // Short rows: the node's place in the graph's order (the snapshot's, then each
  // update's added nodes), a status code (an index into STATUSES), the attempt, and
  // start and end in milliseconds after t0.
  const c = u.changed;
  for (let i = 0; i < c.length; i += 5) {
    const n = S.order[c[i]];
    if (n) applyChange(n, STATUSES[c[i + 1]], c[i + 2], ms(c[i + 3]), ms(c[i + 4]), u.extra[n.id], entries);
  }
  for (const e of u.events) {
    const n = e.node ? S.nodes.get(e.node.node) : null;
    if (e.type === 'BranchPaused' && e.reason) S.pauseReason.set(e.branch, e.reason);
    if (e.type === 'NodeProgress' && n) n.progress = e.payload;
    entries.push(logEntry(e, n));
  }
  // Starts and successes carry the node's own times: the log reads in time order.
  const now = serverNow();
  for (const entry of entries) if (entry.at == null) entry.at = now;
  entries.sort((a, b) => a.at - b.at);
  for (const entry of entries) logPush(entry);
  S.run = Object.assign(S.run ?? {}, u.run, { control: S.run?.control ?? false });
  applyRunLists(u.run);
  S.position = u.seq;
  dirty.graph = dirty.gantt = dirty.critical = dirty.header = dirty.branchList = true;
  schedule();
}

function setConn(state) {
  S.conn = state;
  dirty.header = true;
  schedule();
}

function connect() {
  // The page's stream: a snapshot, then a few updates a second however fast the run.
  const es = new EventSource(withToken('/api/updates'));
  es.addEventListener('open', () => setConn('live'));
  es.addEventListener('snapshot', (ev) => { applySnapshot(JSON.parse(ev.data)); setConn('live'); });
  es.addEventListener('update', onUpdate);
  es.addEventListener('end', (ev) => {
    es.close(); // otherwise EventSource reconnects
    S.ended = true;
    const data = JSON.parse(ev.data || '{}');
    if (data.run) applyRunLists(S.run = Object.assign(S.run ?? {}, data.run));
    for (const n of S.order) if (n.status === 'running') ganttStop(n);
    setConn('ended');
    markAll();
  });
  es.addEventListener('error', () => {
    if (S.ended) return;
    setConn('reconnecting');
    // EventSource retries by itself, unless the server refused outright.
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  });
}

// ------------------------------------------------------------------ frame scheduling
// What frame() redraws, in order, and how often at most (ms). A whole redraw of the log
// or the timeline costs layout or thousands of bars: at thousands of events a second
// they would take every frame; the graph only draws what is on screen.
const TASKS = [
  ['layout', () => (S.order.length > 3000 ? 100 : 0), () => { layout(); dirty.graph = true; }],
  ['graph', () => 0, () => drawGraph()], ['gantt', () => 100, () => drawGantt()],
  ['header', () => 100, () => renderHeader()], ['branchList', () => 250, () => renderBranches()],
  ['held', () => 0, () => renderHeld()], ['details', () => 0, () => renderDetails()],
  ['log', () => 200, () => renderLog()],
];
const lastRun = {}; // task name -> when it last ran
let [frameRequested, laterTimer] = [false, 0];

function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(frame);
}

/** Every DOM and canvas update happens here, once per animation frame at most. */
function frame() {
  frameRequested = false;
  const now = performance.now();
  const firstPaint = S.firstPaintMs === null && S.snapshots > 0;
  let wait = Infinity;
  for (const [name, every, run] of TASKS) {
    if (!dirty[name]) continue;
    const due = (lastRun[name] ?? -Infinity) + every() - now;
    if (due > 0 && !firstPaint) { wait = Math.min(wait, due); continue; }
    dirty[name] = false;
    lastRun[name] = now;
    run();
  }
  if (firstPaint) S.firstPaintMs = performance.now(); // both canvases were drawn above
  keepRefusals();
  if (wait < Infinity && !laterTimer) laterTimer = setTimeout(() => { laterTimer = 0; schedule(); }, wait);
}

// The clock moves on its own: elapsed time, and running bars growing to now.
setInterval(() => {
  if (!S.run || S.run.state === 'finished' || S.ended) return;
  dirty.header = dirty.gantt = true;
  schedule();
}, 250);

// ------------------------------------------------------------------ canvases
function setupCanvas(canvas) {
  const c = { el: canvas, ctx: canvas.getContext('2d'), w: 1, h: 1, dpr: 1 };
  const size = () => {
    const r = canvas.getBoundingClientRect();
    Object.assign(c, { dpr: window.devicePixelRatio || 1, w: Math.max(1, r.width), h: Math.max(1, r.height) });
    canvas.width = Math.round(c.w * c.dpr);
    canvas.height = Math.round(c.h * c.dpr);
  };
  new ResizeObserver(() => { size(); dirty.graph = dirty.gantt = true; schedule(); }).observe(canvas);
  size();
  return c;
}

/** A canvas as tall as its content within [min, max] px: a small run leaves no blank.
 *  The ResizeObserver then resizes its pixels and redraws. */
function fitHeight(c, want, min, max) {
  const h = Math.round(clamp(want, min, max));
  if (Math.abs(h - c.h) > 1) c.el.style.height = `${h}px`;
}

function beginCanvas(c) {
  const ctx = c.ctx;
  ctx.setTransform(c.dpr, 0, 0, c.dpr, 0, 0);
  ctx.clearRect(0, 0, c.w, c.h);
  Object.assign(ctx, { font: FONT, textBaseline: 'middle' });
  return ctx;
}

// The palette is defined once, in app.css; the canvases read it from there.
const COLOR = {};
let HELD_COLOR = '#8a3ffc';
function readPalette() {
  const css = getComputedStyle(document.documentElement);
  for (const s of STATUSES) COLOR[s] = css.getPropertyValue(`--st-${s}`).trim() || '#999';
  HELD_COLOR = css.getPropertyValue('--held').trim() || HELD_COLOR;
}

/** Text cut to about max pixels (one measure: labels are cut by the thousand). */
function fitText(ctx, text, max) {
  const width = ctx.measureText(text).width;
  return width <= max ? text : `${text.slice(0, Math.max(1, Math.floor((text.length * max) / width) - 1))}…`;
}

// ------------------------------------------------------------------ graph: layout
// The view of the graph: scroll offsets and the laid-out branches.
const GV = { sx: 0, sy: 0, branches: [], width: 0, height: 0, canvas: null, drag: null };

function branchOrder(a, b) {
  if (a === 'main' || b === 'main') return (b === 'main') - (a === 'main');
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Places every visible box: one band per branch, one column per level, one group per
 *  action in it. O(nodes), and each column's items come out sorted by y, so drawing and
 *  hit tests binary-search them. */
function layout() {
  const out = [];
  let [y, width] = [BOX.pad, 0];
  for (const name of [...S.branches.keys()].sort(branchOrder)) {
    const b = S.branches.get(name);
    const lb = { name, b, y, h: BOX.head, cols: [] };
    let [x, bottom] = [BOX.pad, y + BOX.head];
    for (const groups of b.levels) {
      if (!groups) continue; // levels can be sparse: deps in another branch
      if (S.collapsed.has(name)) { for (const g of groups.values()) for (const n of g.nodes) n[VIEW].box = null; continue; }
      const col = { x, items: [] };
      let cy = y + BOX.head + 4;
      for (const g of groups.values()) cy = placeGroup(g, col, x, cy);
      lb.cols.push(col);
      bottom = Math.max(bottom, cy);
      x += BOX.col;
    }
    lb.h = bottom - y + 4;
    width = Math.max(width, x);
    out.push(lb);
    y += lb.h + BOX.branchGap;
  }
  Object.assign(GV, { branches: out, width: width + BOX.pad, height: y });
  fitHeight(GV.canvas, y, 160, 520);
}

function placeGroup(g, col, x, y) {
  const big = g.nodes.length > AGGREGATE_OVER;
  if (big && !S.expanded.has(g.key)) {
    const item = { kind: 'agg', group: g, x, y, w: BOX.w, h: BOX.agg }; // all its nodes share it
    col.items.push(item);
    for (const n of g.nodes) n[VIEW].box = item;
    return y + BOX.agg + BOX.gap;
  }
  if (big) {
    col.items.push({ kind: 'aggHead', group: g, x, y, w: BOX.w, h: BOX.aggHead });
    y += BOX.aggHead + BOX.gap;
  }
  for (const n of g.nodes) {
    col.items.push(n[VIEW].box = { kind: 'node', node: n, x, y, w: BOX.w, h: BOX.h });
    y += BOX.h + BOX.gap;
  }
  return y;
}

/** The first index in [0, length) for which before(i) is false (before: true, then false). */
function bisect(length, before) {
  let [lo, hi] = [0, length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(mid)) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Index of the first item whose bottom is at or below y (items are sorted by y). */
const firstBelow = (items, y) => bisect(items.length, (i) => items[i].y + items[i].h < y);

// ------------------------------------------------------------------ graph: drawing
/** Draws what is on screen only: bands and columns outside the view are skipped whole. */
function drawGraph() {
  const c = GV.canvas;
  const ctx = beginCanvas(c);
  GV.sx = clamp(GV.sx, 0, Math.max(0, GV.width - c.w));
  GV.sy = clamp(GV.sy, 0, Math.max(0, GV.height - c.h));
  if (!S.order.length) return say(ctx, S.snapshots ? 'No nodes yet.' : 'Waiting for the run…', 20);
  const [left, top, right, bottom] = [GV.sx, GV.sy, GV.sx + c.w, GV.sy + c.h];
  ctx.save();
  ctx.translate(-GV.sx, -GV.sy);
  drawEdges(ctx);
  for (const lb of GV.branches) {
    if (lb.y > bottom || lb.y + lb.h < top) continue;
    drawBranchBand(ctx, lb, left, right);
    for (const col of lb.cols) {
      if (col.x > right || col.x + BOX.w < left) continue;
      const items = col.items;
      for (let i = firstBelow(items, top); i < items.length && items[i].y <= bottom; i++) DRAW[items[i].kind](ctx, items[i]);
    }
  }
  ctx.restore();
}

const DRAW = { node: drawNodeBox, agg: drawAggregate, aggHead: drawAggHead };

const say = (ctx, text, y) => Object.assign(ctx, { fillStyle: '#5d6877' }).fillText(text, 16, y);

function drawBranchBand(ctx, lb, left, right) {
  const { b, name } = lb;
  Object.assign(ctx, { fillStyle: S.paused.has(name) ? '#efe6ff' : '#eef1f5' }).fillRect(left, lb.y, right - left, BOX.head - 2);
  ctx.fillStyle = '#1d232b';
  ctx.font = BOLD;
  const flags = `${S.paused.has(name) ? '  ‖ paused' : ''}${S.cancelled.has(name) ? '  ⊘ cancelled' : ''}`;
  const c = b.counts;
  const text = `${b.total} nodes · ${c.running} running · ${c.succeeded} ✓ · ${c.failed} ✗${flags}`;
  ctx.fillText(`${S.collapsed.has(name) ? '▸' : '▾'} ${name}   ${text}`, left + 8, lb.y + BOX.head / 2 - 1);
  ctx.font = FONT;
}

function drawNodeBox(ctx, item) {
  const n = item.node;
  const v = n[VIEW];
  const { x, y, w, h } = item;
  const light = LIGHT_INK.has(n.status);
  Object.assign(ctx, { fillStyle: COLOR[n.status] }).fillRect(x, y, w, h);
  if (!light) strokeBox(ctx, '#b8c0cb', 1, x + 0.5, y + 0.5, w - 1, h - 1);
  if (n.held) strokeBox(ctx, HELD_COLOR, 3, x + 1.5, y + 1.5, w - 3, h - 3);
  if (S.selected === n.id) strokeBox(ctx, '#0b0f14', 2, x - 2, y - 2, w + 4, h + 4);
  ctx.fillStyle = light ? '#fff' : '#1d232b';
  ctx.fillText(GLYPH[n.status], x + 4, y + h / 2);
  if (v.label === null) v.label = fitText(ctx, n.id, w - (n.held ? 48 : 22)); // measured once
  ctx.fillText(v.label, x + 16, y + h / 2);
  if (n.held) ctx.fillText('held', x + w - 28, y + h / 2);
}

function strokeBox(ctx, color, width, x, y, w, h) {
  Object.assign(ctx, { strokeStyle: color, lineWidth: width }).strokeRect(x, y, w, h);
}

/** A big fan-out as one box: "action ×N", the counts in text, a stacked status bar. */
function drawAggregate(ctx, item) {
  const g = item.group;
  const { x, y, w, h } = item;
  const counts = zeroCounts();
  for (const n of g.nodes) counts[n.status]++;
  Object.assign(ctx, { fillStyle: '#fff' }).fillRect(x, y, w, h);
  const selected = S.selected && S.nodes.get(S.selected)?.[VIEW].group === g;
  strokeBox(ctx, selected ? '#0b0f14' : '#7a8594', selected ? 2 : 1, x + 0.5, y + 0.5, w - 1, h - 1);
  ctx.fillStyle = '#1d232b';
  ctx.font = BOLD;
  ctx.fillText(fitText(ctx, `▸ ${g.action} ×${g.nodes.length}`, w - 8), x + 4, y + 9);
  ctx.font = FONT;
  const summary = STATUSES.filter((s) => counts[s]).map((s) => `${GLYPH[s]}${counts[s]}`).join(' ');
  ctx.fillText(fitText(ctx, summary, w - 8), x + 4, y + 21);
  let bx = x + 3;
  for (const s of STATUSES) {
    if (!counts[s]) continue;
    const sw = (counts[s] / g.nodes.length) * (w - 6);
    ctx.fillStyle = COLOR[s];
    ctx.fillRect(bx, y + h - 8, Math.max(1, sw), 5);
    bx += sw;
  }
}

function drawAggHead(ctx, item) {
  ctx.fillStyle = '#5d6877';
  ctx.font = BOLD;
  ctx.fillText(`▾ ${item.group.action} ×${item.group.nodes.length} (fold)`, item.x + 2, item.y + item.h / 2);
  ctx.font = FONT;
}

function edgePath(ctx, a, b) {
  const [x1, y1, x2, y2] = [a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2];
  const mx = (x1 + x2) / 2;
  ctx.moveTo(x1, y1);
  ctx.bezierCurveTo(mx, y1, mx, y2, x2, y2);
}

/** All edges of a small graph; the selected node's always, one line per box (a fan-out
 *  of thousands into one aggregate is one line). */
function drawEdges(ctx) {
  if (S.edgeCount < ALL_EDGES_BELOW) {
    ctx.beginPath();
    for (const n of S.order) {
      const box = n[VIEW].box;
      if (!box) continue;
      for (const d of n.deps) {
        const db = S.nodes.get(d)?.[VIEW].box;
        if (db && db !== box) edgePath(ctx, db, box);
      }
    }
    Object.assign(ctx, { strokeStyle: 'rgba(90,100,115,.35)', lineWidth: 1 }).stroke();
  }
  const sel = S.selected && S.nodes.get(S.selected);
  const box = sel && sel[VIEW].box;
  if (!box) return;
  const seen = new Set([box]);
  ctx.beginPath();
  for (const d of sel.deps) {
    const db = S.nodes.get(d)?.[VIEW].box;
    if (db && !seen.has(db)) { seen.add(db); edgePath(ctx, db, box); }
  }
  for (const c of sel[VIEW].dependents) {
    const cb = c[VIEW].box;
    if (cb && !seen.has(cb)) { seen.add(cb); edgePath(ctx, box, cb); }
  }
  Object.assign(ctx, { strokeStyle: '#1b2430', lineWidth: 1.6 }).stroke();
}

// ------------------------------------------------------------------ graph: interaction
function hitGraph(px, py) {
  const [wx, wy] = [px + GV.sx, py + GV.sy];
  const lb = GV.branches.find((b) => wy >= b.y && wy <= b.y + b.h);
  if (!lb) return null;
  if (wy < lb.y + BOX.head) return { kind: 'branch', name: lb.name };
  const col = lb.cols.find((cl) => wx >= cl.x && wx <= cl.x + BOX.w);
  const item = col?.items[firstBelow(col.items, wy)];
  return item && item.y <= wy ? item : null;
}

function clickGraph(px, py) {
  const hit = hitGraph(px, py);
  if (!hit) return;
  if (hit.kind === 'branch') return toggleBranch(hit.name);
  if (hit.kind === 'node') return selectNode(hit.node.id, false);
  if (hit.kind === 'agg') S.expanded.add(hit.group.key); else S.expanded.delete(hit.group.key);
  dirty.layout = true;
  schedule();
}

function toggleBranch(name) {
  if (!S.collapsed.delete(name)) S.collapsed.add(name);
  dirty.layout = dirty.branchList = true;
  schedule();
}

/** Unfolds the node's branch and scrolls the node into the middle of the canvas. */
function revealNode(n) {
  if (S.collapsed.delete(n.branch)) dirty.branchList = true;
  layout();
  dirty.layout = false;
  const box = n[VIEW].box;
  if (box) Object.assign(GV, { sx: box.x + box.w / 2 - GV.canvas.w / 2, sy: box.y + box.h / 2 - GV.canvas.h / 2 });
  dirty.graph = true;
}

function scrollGraph(dx, dy) {
  Object.assign(GV, { sx: GV.sx + dx, sy: GV.sy + dy });
  dirty.graph = true;
  schedule();
}

function setupGraphInput(canvas) {
  canvas.addEventListener('pointerdown', (e) => {
    GV.drag = { x: e.clientX, y: e.clientY, sx: GV.sx, sy: GV.sy, moved: false };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    const d = GV.drag;
    if (d) { // a drag pans; a press that hardly moved is a click
      const [dx, dy] = [e.clientX - d.x, e.clientY - d.y];
      if (Math.abs(dx) + Math.abs(dy) > 4) { d.moved = true; canvas.classList.add('dragging'); }
      if (d.moved) scrollGraph(d.sx - dx - GV.sx, d.sy - dy - GV.sy);
      return;
    }
    const hit = hitGraph(e.offsetX, e.offsetY);
    canvas.classList.toggle('over', !!hit);
    canvas.title = hit?.kind === 'node' ? `${hit.node.id} (${hit.node.status})` : '';
  });
  const release = (e) => {
    const d = GV.drag;
    GV.drag = null;
    canvas.classList.remove('dragging');
    if (e.type === 'pointerup' && d && !d.moved) clickGraph(e.offsetX, e.offsetY);
  };
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    scrollGraph(e.shiftKey ? e.deltaY : e.deltaX, e.shiftKey ? 0 : e.deltaY);
  }, { passive: false });
}

// ------------------------------------------------------------------ timeline (gantt)
// Lanes hold bars that do not overlap, in order of start. `free` is a stack of the lanes
// with no running bar: a bar goes into one of them, or into a new lane, so there are as
// many lanes as nodes ever ran at once.
const GT = { lanes: [], free: [], critical: [], cpAt: 0, cpMark: 0,
  scrollY: 0, laneH: 10, t0: 0, scale: 1, canvas: null };

const barEnd = (n, now) => (n.status === 'running' ? now : n.finished_at ?? n.started_at);

const newLane = () => GT.lanes.push({ nodes: [], busy: null, end: -Infinity }) - 1;

/** A free lane whose last bar ended by `start`, else a new one. */
function laneFor(start) {
  while (GT.free.length) {
    const l = GT.free[GT.free.length - 1];
    if (GT.lanes[l].busy) { GT.free.pop(); continue; } // a stale entry
    if (GT.lanes[l].end <= start + 1e-9) return GT.free.pop();
    break; // a bar placed late (its start came with its end): not over another one
  }
  return newLane();
}

function ganttStart(n) {
  const v = n[VIEW];
  if (v.lane >= 0) ganttRemove(n); // a new attempt: one bar per node, from its latest start
  v.lane = laneFor(n.started_at);
  Object.assign(GT.lanes[v.lane], { busy: n, end: Infinity }).nodes.push(n);
}

/** Another attempt: one bar per node, from its first start, so its bar goes on in its
 *  lane if nothing was placed there since; else it moves (ganttStart). */
function ganttResume(n) {
  const lane = GT.lanes[n[VIEW].lane];
  if (lane && lane.nodes[lane.nodes.length - 1] === n && (!lane.busy || lane.busy === n)) {
    Object.assign(lane, { busy: n, end: Infinity });
    return;
  }
  ganttStart(n);
}

function ganttStop(n) {
  const lane = GT.lanes[n[VIEW].lane];
  if (!lane || lane.busy !== n) return;
  Object.assign(lane, { busy: null, end: n.finished_at ?? serverNow() });
  GT.free.push(n[VIEW].lane);
}

function ganttRemove(n) {
  const v = n[VIEW];
  const lane = GT.lanes[v.lane];
  const i = lane.nodes.lastIndexOf(n);
  if (i >= 0) lane.nodes.splice(i, 1);
  if (lane.busy === n) {
    const last = lane.nodes[lane.nodes.length - 1];
    Object.assign(lane, { busy: null, end: last ? barEnd(last, serverNow()) : -Infinity });
    GT.free.push(v.lane);
  }
  v.lane = -1;
}

/** Interval partitioning of the snapshot: a sweep over starts and ends in time order; an
 *  end frees its lane, a start takes a free lane or a new one. O(n log n) for the sorts;
 *  events then place bars one at a time (ganttStart / ganttStop). */
function ganttRebuild() {
  Object.assign(GT, { lanes: [], free: [] });
  const now = serverNow();
  const started = S.order.filter((n) => n.started_at != null).sort((a, b) => a.started_at - b.started_at);
  const ended = started.filter((n) => n.status !== 'running').sort((a, b) => barEnd(a, now) - barEnd(b, now));
  let j = 0;
  for (const n of started) {
    // Free the lanes of bars over by now (placed already: a bar's start precedes its end).
    while (j < ended.length && barEnd(ended[j], now) <= n.started_at && ended[j][VIEW].lane >= 0) {
      const l = ended[j++][VIEW].lane;
      GT.lanes[l].busy = null;
      GT.free.push(l);
    }
    const l = GT.free.length ? GT.free.pop() : newLane();
    Object.assign(GT.lanes[l], { busy: n, end: n.status === 'running' ? Infinity : barEnd(n, now) }).nodes.push(n);
    n[VIEW].lane = l;
  }
  GT.lanes.forEach((lane, l) => { if (lane.busy && lane.end < Infinity) { lane.busy = null; GT.free.push(l); } });
  dirty.critical = true;
}

/** Longest chain through deps by duration, over nodes with a start. O(nodes + edges):
 *  insertion order is a topological order (deps always come first). */
function computeCritical(now) {
  let best = null;
  const mark = ++GT.cpMark;
  for (const n of S.order) {
    if (n.started_at == null) continue;
    const v = n[VIEW];
    let [len, prev] = [0, null];
    for (const d of n.deps) {
      const dv = S.nodes.get(d)?.[VIEW];
      if (dv && dv.cpMark === mark && dv.cpLen > len) [len, prev] = [dv.cpLen, S.nodes.get(d)];
    }
    Object.assign(v, { cpLen: len + Math.max(0, barEnd(n, now) - n.started_at), cpPrev: prev, cpMark: mark });
    if (!best || v.cpLen > best[VIEW].cpLen) best = n;
  }
  const path = [];
  for (let n = best; n; n = n[VIEW].cpPrev) path.push(n);
  GT.critical = path.reverse();
  GT.cpAt = performance.now();
}

function niceStep(span, pixels) {
  const target = span / Math.max(1, pixels / 90);
  const pow = 10 ** Math.floor(Math.log10(target));
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= target);
}

function drawGantt() {
  const c = GT.canvas;
  const ctx = beginCanvas(c);
  const now = serverNow();
  const r = S.run;
  // Running bars lengthen the path as time passes: recompute now and then, not per frame.
  if (dirty.critical || (S.counts.running && performance.now() - GT.cpAt > 1000)) {
    dirty.critical = false;
    computeCritical(now);
  }
  const t0 = r?.started_at ?? GT.lanes[0]?.nodes[0]?.started_at ?? now; // lane 0 holds the first start
  const t1 = Math.max(t0 + 1, r?.finished_at ?? now);
  const lanes = GT.lanes.length;
  const viewH = c.h - GANTT.axis;
  Object.assign(GT, { t0, scale: (c.w - GANTT.padL - GANTT.padR) / (t1 - t0) });
  GT.laneH = clamp(Math.floor(viewH / Math.max(1, lanes)), GANTT.minLane, GANTT.maxLane);
  fitHeight(c, lanes * GANTT.maxLane + GANTT.axis + 8, 120, 280);
  GT.scrollY = clamp(GT.scrollY, 0, Math.max(0, lanes * GT.laneH - viewH));
  drawAxis(ctx, c, t0, t1);
  if (!lanes) return say(ctx, 'No node has started yet.', GANTT.axis + 16);
  ctx.save(); // bars stay below the axis
  ctx.beginPath();
  ctx.rect(0, GANTT.axis, c.w, viewH);
  ctx.clip();
  // One path per status: a handful of fills instead of one per bar.
  const paths = Object.fromEntries(STATUSES.map((s) => [s, new Path2D()]));
  const last = Math.min(lanes - 1, Math.ceil((GT.scrollY + viewH) / GT.laneH));
  for (let l = Math.floor(GT.scrollY / GT.laneH); l <= last; l++) {
    for (const n of GT.lanes[l].nodes) paths[n.status].rect(...barRect(n, now));
  }
  for (const s of STATUSES) { ctx.fillStyle = COLOR[s]; ctx.fill(paths[s]); }
  for (const n of GT.critical) strokeBox(ctx, '#0b0f14', 1.5, ...barRect(n, now));
  const sel = S.selected && S.nodes.get(S.selected);
  if (sel && sel[VIEW].lane >= 0) strokeBox(ctx, SELECTED_BAR, 2.5, ...barRect(sel, now));
  ctx.restore();
  const cp = GT.critical;
  const cpTime = fmtDur(cp.length ? cp[cp.length - 1][VIEW].cpLen : 0);
  setText($('#gantt-info'), `${lanes} lanes · critical path (outlined): ${cp.length} nodes, ${cpTime}`);
}

function barRect(n, now) {
  const x = GANTT.padL + (n.started_at - GT.t0) * GT.scale;
  const y = GANTT.axis + n[VIEW].lane * GT.laneH - GT.scrollY;
  return [x, y + 0.5, Math.max(1, (barEnd(n, now) - n.started_at) * GT.scale), Math.max(1, GT.laneH - 1)];
}

function drawAxis(ctx, c, t0, t1) {
  const step = niceStep(t1 - t0, c.w - GANTT.padL - GANTT.padR);
  ctx.fillStyle = '#5d6877';
  ctx.beginPath();
  for (let t = 0; t <= t1 - t0 + 1e-9; t += step) {
    const x = Math.round(GANTT.padL + t * GT.scale) + 0.5;
    ctx.moveTo(x, GANTT.axis - 4);
    ctx.lineTo(x, c.h);
    ctx.fillText(`+${fmtDur(t)}`, x + 3, GANTT.axis / 2);
  }
  Object.assign(ctx, { strokeStyle: '#e3e7ec', lineWidth: 1 }).stroke();
}

/** The bar under a point: its lane by y, then a binary search by start in that lane. */
function hitGantt(px, py) {
  const lane = py >= GANTT.axis && GT.lanes[Math.floor((py - GANTT.axis + GT.scrollY) / GT.laneH)];
  if (!lane) return null;
  const t = GT.t0 + (px - GANTT.padL) / GT.scale;
  const tol = 3 / GT.scale;
  const n = lane.nodes[bisect(lane.nodes.length, (i) => lane.nodes[i].started_at <= t + tol) - 1];
  return n && barEnd(n, serverNow()) >= t - tol ? n : null;
}

function setupGanttInput(canvas) {
  const tip = $('#gantt-tip');
  canvas.addEventListener('mousemove', (e) => {
    const n = hitGantt(e.offsetX, e.offsetY);
    canvas.title = n ? n.id : '';
    tip.hidden = !n;
    if (!n) return;
    tip.textContent = `${n.id} · ${GLYPH[n.status]} ${n.status} · ${fmtDur(barEnd(n, serverNow()) - n.started_at)}`;
    tip.style.left = `${Math.max(0, Math.min(e.offsetX + 12, canvas.clientWidth - tip.offsetWidth - 4))}px`;
    tip.style.top = `${e.offsetY + 14}px`;
  });
  canvas.addEventListener('mouseleave', () => { tip.hidden = true; });
  canvas.addEventListener('click', (e) => {
    const n = hitGantt(e.offsetX, e.offsetY);
    if (n) selectNode(n.id, true);
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    GT.scrollY += e.deltaY;
    dirty.gantt = true;
    schedule();
  }, { passive: false });
}

// ------------------------------------------------------------------ formatting
function fmtDur(sec) {
  if (sec == null || !Number.isFinite(sec)) return '–';
  if (sec < 1) return `${Math.round(sec * 1000)} ms`;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 2 : 1)} s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m} m ${String(Math.floor(sec % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

function fmtClock(epoch) {
  if (epoch == null) return '–';
  const d = new Date(epoch * 1000);
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

const fmtWhen = (epoch) => (epoch == null ? '–' : `${new Date(epoch * 1000).toLocaleDateString()} ${fmtClock(epoch)}`);

// Values come from JSON.parse: they stringify back without error.
function shortJSON(value, max = 120) {
  const text = (typeof value === 'string' ? value : JSON.stringify(value)) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const prettyJSON = (value) => JSON.stringify(value, null, 2) ?? 'null';

// ------------------------------------------------------------------ header
function buildCounts() {
  for (const s of STATUSES) {
    $('#counts').append(h('button', {
      type: 'button', dataset: { status: s }, title: `Show only events of ${s} nodes in the log (click again: all)`,
      onclick: () => setStatusFilter(S.filter.status === s ? '' : s),
    }, el('span', `swatch st-${s}`), el('span', 'label', s), el('span', 'n', '0')));
  }
}

function renderHeader() {
  const r = S.run;
  const state = runStateText(r);
  const badge = $('#run-state');
  setText(badge, state);
  badge.className = `badge state-${state || 'none'}`;
  if (r) {
    setText($('#dag-name'), r.dag_name ?? 'dagtrio');
    setText($('#run-id'), r.run_id ?? '–');
    const end = r.finished_at ?? (r.state === 'finished' || S.ended ? null : serverNow());
    setText($('#elapsed'), r.started_at != null && end != null ? fmtDur(end - r.started_at) : '–');
  }
  for (const b of $('#counts').children) {
    setText(b.querySelector('.n'), String(S.counts[b.dataset.status]));
    b.ariaPressed = String(S.filter.status === b.dataset.status);
  }
  const conn = $('#conn');
  setText(conn, S.conn);
  conn.className = `conn conn-${S.conn}`;
  const banner = $('#readonly');
  banner.hidden = !r || !!r.control;
  setText(banner, r?.source === 'journal' || r?.read_only
    ? "Read-only: following another process's run from its journal."
    : 'Read-only: open the URL with its token to control the run.');
  $('#shutdown-box').hidden = !(r && r.control && !r.read_only);
  $('#shutdown').disabled = !controllable();
}

function setupShutdown() {
  const btn = $('#shutdown');
  const reason = btn.nextElementSibling;
  btn.addEventListener('click', () => {
    const text = $('#grace').value.trim();
    const grace = text === '' ? null : Number(text); // empty: wait for running nodes
    if (grace !== null && !(Number.isFinite(grace) && grace >= 0)) {
      reason.textContent = 'grace must be a number of seconds (0 or more), or empty to wait';
      return;
    }
    send('/api/shutdown', { grace }, btn, reason, () => { btn.disabled = !controllable(); });
  });
}

// ------------------------------------------------------------------ branches panel
/** Keeps `box`'s children to one per key, reusing existing ones (a half-typed textarea or
 *  a shown reason survives a re-render) and touching the DOM only when the list changed. */
function reconcile(box, keys, make) {
  if (keys.length === box.children.length && keys.every((k, i) => box.children[i].dataset.key === k)) return;
  const old = new Map([...box.children].map((child) => [child.dataset.key, child]));
  box.replaceChildren(...keys.map((k) => {
    if (old.has(k)) return old.get(k);
    const made = make(k);
    made.dataset.key = k;
    return made;
  }));
}

function renderBranches() {
  const ctl = controllable();
  const names = [...new Set([...S.branches.keys(), ...S.paused, ...S.cancelled])].sort(branchOrder);
  const box = $('#branches');
  // Keys carry controllability: when it changes, the rows are made again, with or without buttons.
  reconcile(box, names.map((n) => `${ctl ? 'c' : 'r'}|${n}`), (key) => branchRow(key.slice(2), ctl));
  for (const row of box.children) updateBranchRow(row);
  updateBranchFilter(names);
}

function branchRow(name, ctl) {
  const toggle = button(name, { className: 'toggle', title: 'Fold or unfold this branch in the graph',
    onclick: () => toggleBranch(name) });
  const row = h('div', { className: 'branch', dataset: { branch: name } },
    toggle, el('span', 'flag'), el('span', 'bcounts'));
  if (ctl) {
    row.append(
      ...commandButton('Pause', 'pause', () => ({ type: 'PauseBranch', branch: name })),
      ...commandButton('Resume', 'resume', () => ({ type: 'ResumeBranch', branch: name })),
      ...commandButton('Cancel', 'cancel', () => ({ type: 'CancelBranch', branch: name })));
  }
  return row;
}

function updateBranchRow(row) {
  const name = row.dataset.branch;
  const b = S.branches.get(name);
  const [paused, cancelled] = [S.paused.has(name), S.cancelled.has(name)];
  const state = cancelled ? 'cancelled' : paused ? 'paused' : '';
  const flag = row.querySelector('.flag');
  row.querySelector('.toggle').ariaExpanded = String(!S.collapsed.has(name));
  setText(flag, state);
  flag.className = `flag ${state}`;
  const parts = b ? STATUSES.filter((s) => b.counts[s]).map((s) => `${b.counts[s]} ${s}`) : [];
  setText(row.querySelector('.bcounts'), b ? `${b.total} nodes: ${parts.join(', ')}` : 'no node yet');
  const action = (a) => row.querySelector(`[data-action=${a}]`) ?? {}; // read-only rows have none
  action('pause').hidden = paused || cancelled;
  action('resume').hidden = !paused;
  action('cancel').hidden = cancelled;
}

// ------------------------------------------------------------------ editors (complete / retry)
const drafts = new Map(); // what a person typed, by editor, across re-renders
let editorCount = 0;

/** "Complete with outputs": a JSON textarea checked as one types; the button is off while
 *  it does not parse. Sends CompleteNode with the parsed value. */
function outputsEditor(nodeId, where, label, buttonText) {
  const key = `${where}:${nodeId}`;
  const area = h('textarea', { className: 'outputs', id: `outputs-${++editorCount}`, spellcheck: false,
    value: drafts.get(key) ?? '{}' });
  const error = h('span', { className: 'json-error', ariaLive: 'polite' });
  const validate = () => {
    let problem = '';
    try { JSON.parse(area.value); } catch (err) { problem = area.value.trim() ? err.message : 'empty: write JSON, e.g. {}'; }
    error.textContent = problem;
    area.ariaInvalid = String(!!problem);
    btn.disabled = !!problem;
  };
  // After a send, validity (not send()) decides whether the button is on.
  const [btn, reason] = commandButton(buttonText, 'complete',
    () => ({ type: 'CompleteNode', node_id: nodeId, outputs: JSON.parse(area.value) }), validate);
  area.addEventListener('input', () => { drafts.set(key, area.value); validate(); });
  validate();
  return h('div', { className: 'editor' }, h('label', { htmlFor: area.id }, label), area,
    h('div', { className: 'row' }, btn, reason, error));
}

const retryButton = (id) => commandButton('Retry', 'retry', () => ({ type: 'RetryNode', node_id: id, inputs: null }));

// ------------------------------------------------------------------ held panel
function renderHeld() {
  const ctl = controllable();
  const list = $('#held-list');
  const p = ctl ? 'c' : 'r';
  const keys = [...[...S.paused].sort(branchOrder).map((b) => `${p}|b|${b}`), ...[...S.held].map((id) => `${p}|n|${id}`)];
  reconcile(list, keys, (key) => (key[2] === 'b' ? pausedItem(key.slice(4), ctl) : heldItem(key.slice(4), ctl)));
  for (const item of list.querySelectorAll('.paused-branch')) {
    const why = S.pauseReason.get(item.dataset.branch);
    setText(item.querySelector('.why'), why ? `reason: ${why}` : '');
  }
  for (const item of list.querySelectorAll('.held-node')) {
    const n = S.nodes.get(item.dataset.node);
    setText(item.querySelector('.err'), n?.error ? `failed: ${n.error}` : '');
  }
  if (!keys.length) list.replaceChildren(el('p', 'muted', 'Nothing is waiting for a decision.'));
}

function pausedItem(name, ctl) {
  return h('div', { className: 'paused-branch', dataset: { branch: name } },
    h('div', { className: 'item-head' }, el('strong', null, `Branch ${name} is paused`), el('span', 'why muted')),
    ctl ? h('div', { className: 'row' },
      ...commandButton('Resume (approve)', 'resume', () => ({ type: 'ResumeBranch', branch: name }))) : null);
}

function heldItem(id, ctl) {
  return h('div', { className: 'held-node', dataset: { node: id } },
    h('div', { className: 'item-head' }, el('span', 'tag held', 'held'), nodeLink(id)), el('div', 'err'),
    ctl ? outputsEditor(id, 'held', 'Approve with outputs (JSON)', 'Approve / complete') : null,
    ctl ? h('div', { className: 'row' }, ...retryButton(id)) : null);
}

const nodeLink = (id) => button(id, { className: 'link', title: 'Show this node', onclick: () => selectNode(id, true) });

// ------------------------------------------------------------------ details panel
// The selected node's fetched record; refetched (throttled) when an event about it arrives.
const D = { id: null, record: null, spec: null, error: null, busy: false, again: false, last: 0, timer: 0, controls: '' };

function selectNode(id, reveal) {
  const n = S.nodes.get(id);
  if (!n) return;
  S.selected = id;
  if (D.id !== id) {
    clearTimeout(D.timer);
    Object.assign(D, { id, record: null, spec: null, error: null, last: 0, timer: 0, controls: '' });
  }
  $('#details').dataset.node = id;
  if (reveal) revealNode(n);
  dirty.details = dirty.graph = dirty.gantt = true;
  loadDetails();
  schedule();
}

/** Fetches the selected node's record: one request at a time and one per DETAILS_EVERY_MS
 *  at most (events about a running node can come by the hundred); one asked for while a
 *  request is out follows it. */
async function loadDetails() {
  if (!D.id || D.timer) return; // a fetch is planned already
  if (D.busy) { D.again = true; return; }
  const wait = D.last + DETAILS_EVERY_MS - performance.now();
  if (wait > 0) { D.timer = setTimeout(() => { D.timer = 0; loadDetails(); }, wait); return; }
  const id = D.id;
  Object.assign(D, { busy: true, last: performance.now() });
  try {
    const resp = await fetch(withToken(`/api/nodes/${encodeURIComponent(id)}`));
    const body = await resp.json().catch(() => ({}));
    if (id !== D.id) return; // the selection moved on (finally still runs)
    if (!resp.ok) D.error = body.error || `HTTP ${resp.status}`;
    else adoptHeld(Object.assign(D, { record: body.record ?? null, spec: body.spec ?? null, error: null }).record);
  } catch (err) {
    if (id === D.id) D.error = `could not load: ${err.message}`;
  } finally {
    D.busy = false;
    dirty.details = true;
    schedule();
    if (D.again) { D.again = false; loadDetails(); }
  }
}

/** A fresh record says whether its node is held: one more source for the held list. */
function adoptHeld(record) {
  const n = record && S.nodes.get(record.id);
  if (!n || record.status !== n.status || !!record.held === n.held) return;
  if (!record.held) return unhold(n);
  n.held = true;
  S.held.add(n.id);
  syncRunLists();
}

function detailsMode(n) {
  if (!controllable() || !n) return 'none';
  if (n.held) return 'held';
  return n.status === 'pending' || n.status === 'ready' ? 'open' : 'none';
}

function renderDetails() {
  const body = $('#details-body');
  if (!D.id) return body.replaceChildren(el('p', 'muted', 'Select a node: in the graph, the timeline, the log or Find.'));
  const n = S.nodes.get(D.id);
  // The stream is newer than the record for what both carry; the record adds the rest.
  const rec = { ...(D.record ?? {}), ...(n ?? {}) };
  if (!body.querySelector('.det-info')) {
    body.replaceChildren(el('div', 'det-info'), el('div', 'det-controls'), el('div', 'det-extra'));
  }
  body.querySelector('.det-info').replaceChildren(...detailsInfo(rec, n));
  const mode = detailsMode(n);
  if (D.controls !== `${D.id}|${mode}`) { // made again only when what can be done changes: keeps typing
    D.controls = `${D.id}|${mode}`;
    body.querySelector('.det-controls').replaceChildren(...detailsControls(D.id, mode));
  }
  body.querySelector('.det-extra').replaceChildren(...detailsExtra(rec));
}

function detailsInfo(rec, n) {
  const parts = [el('h3', null, rec.id ?? D.id)];
  if (D.error) parts.push(el('p', 'error-line', D.error));
  if (!n && !D.record) return parts;
  const dl = el('dl', 'fields');
  const field = (label, value) => dl.append(el('dt', null, label), h('dd', null, value ?? '–'));
  field('status', h('span', { className: 'status-text' }, el('span', `swatch st-${rec.status}`),
    `${GLYPH[rec.status] ?? ''} ${rec.status}`,
    ...['held', 'supplied', 'cached'].filter((f) => rec[f]).map((f) => el('span', `tag ${f}`, f))));
  field('action', rec.action);
  field('branch', rec.branch);
  field('deps', nodeLinks(rec.deps ?? []));
  if (n) field('dependents', nodeLinks(n[VIEW].dependents.map((c) => c.id)));
  field('attempts', String(rec.attempts ?? 0) + (D.spec?.try_count ? ` of ${D.spec.try_count}` : ''));
  field('started', fmtWhen(rec.started_at));
  field('finished', fmtWhen(rec.finished_at));
  const end = rec.finished_at ?? (rec.status === 'running' ? serverNow() : null);
  field('duration', rec.started_at != null && end != null ? fmtDur(end - rec.started_at) : '–');
  field('ended', rec.ended ?? '–');
  if (rec.error) field('error', rec.error);
  parts.push(dl);
  return parts;
}

function nodeLinks(ids) {
  return h('span', { className: 'deps' }, ids.length ? null : 'none', ...ids.slice(0, 40).map(nodeLink),
    ids.length > 40 ? el('span', 'muted', `and ${ids.length - 40} more`) : null);
}

function detailsControls(id, mode) {
  if (mode === 'none') return [];
  if (mode === 'open') {
    return [h('div', { className: 'controls' },
      outputsEditor(id, 'details', 'Complete by hand: these outputs instead of running it (JSON)', 'Complete by hand'))];
  }
  return [h('div', { className: 'controls' }, el('p', 'muted', 'This node failed and is held for a decision.'),
    h('div', { className: 'row' }, ...retryButton(id)),
    outputsEditor(id, 'details', 'Complete with outputs (JSON)', 'Complete with outputs'))];
}

function detailsExtra(rec) {
  const block = (title, text, cls, open = true) =>
    h('details', { className: 'block', open }, el('summary', null, title), el('pre', cls, text));
  const parts = [];
  if (rec.traceback) parts.push(block('traceback', rec.traceback, 'traceback'));
  if (D.spec) parts.push(block('inputs', prettyJSON(D.spec.inputs ?? {}), 'inputs'));
  if (D.record && 'outputs' in D.record) parts.push(block('outputs', prettyJSON(D.record.outputs), 'outputs'));
  if (rec.progress !== undefined) parts.push(block('last progress', prettyJSON(rec.progress), 'progress', false));
  return parts;
}

// ------------------------------------------------------------------ event log
function logEntry(e, n) {
  const cmd = e.type === 'CommandRejected' ? e.command ?? {} : {};
  return {
    at: e.at, type: e.type, text: summarize(e),
    node: n?.id ?? e.node?.node ?? cmd.node_id ?? null,
    branch: n?.branch ?? e.branch ?? cmd.branch ?? null,
  };
}

function logPush(entry) {
  const L = S.log; // a ring: once full, the oldest entry is overwritten
  L.items[(L.start + L.size) % LOG_KEEP] = entry;
  if (L.size < LOG_KEEP) L.size++; else L.start = (L.start + 1) % LOG_KEEP;
  dirty.log = true;
}

const logAt = (i) => S.log.items[(S.log.start + i) % LOG_KEEP];

function summarize(e) {
  const names = (list = []) => (list.length ? list.slice(0, 5).join(', ') : 'none')
    + (list.length > 5 ? ` and ${list.length - 5} more` : '');
  switch (e.type) {
    case 'NodeAdded': return `added: ${e.spec?.action ?? '?'}${e.spec?.deps?.length ? `, after ${names(e.spec.deps)}` : ''}`;
    case 'NodeStarted': return `attempt ${e.attempt} started`;
    case 'NodeProgress': return `progress: ${shortJSON(e.payload)}`;
    case 'NodeCompleted': {
      const m = e.outcome?.metadata;
      return m?.supplied ? 'succeeded (outputs supplied)' : m?.cached ? 'succeeded (cached)' : 'succeeded';
    }
    case 'NodeFailed': return `failed: ${e.error}${e.ended ? ` (work ${e.ended})` : ''}`;
    case 'NodeRetrying': return `attempt ${e.attempt} failed: ${e.error}; retry in ${fmtDur(e.delay)}`;
    case 'NodeCancelled': return `cancelled: ${e.reason}${e.ended ? ` (work ${e.ended})` : ''}`;
    case 'NodeSkipped': return `skipped: ${e.reason}`;
    case 'BranchPaused': return `paused${e.reason ? `: ${e.reason}` : ''}${e.known === false ? ' (no node there yet)' : ''}`;
    case 'BranchResumed': return `resumed${e.known === false ? ' (no node there yet)' : ''}`;
    case 'BranchCancelled': return `cancelled${e.reason ? `: ${e.reason}` : ''}`;
    case 'CommandRejected': return `${e.command?.type ?? 'command'} rejected: ${e.reason}`;
    case 'HookFailed': return `hook ${e.hook} failed: ${e.error}`;
    case 'RunIdle': return `waiting for a decision; paused: ${names(e.branches)}; held: ${names(e.held)}`;
    case 'RunResumed': return `resumed from its journal${e.rerun?.length ? `; ${e.rerun.length} to run again` : ''}`;
    case 'CustomEvent': return `${e.name}: ${shortJSON(e.payload)}`;
    default: return shortJSON(e);
  }
}

function logMatches(entry) {
  const f = S.filter;
  if (f.kind && entry.type !== f.kind) return false;
  if (f.branch && entry.branch !== f.branch && !entry.branch?.startsWith(`${f.branch}/`)) return false;
  // The status filter is by the node's status now: "what happened to the failed ones".
  return !f.status || (!!entry.node && S.nodes.get(entry.node)?.status === f.status);
}

function renderLog() {
  const box = $('#log');
  // Someone is reading older entries: do not pull the text from under them.
  if (box.scrollTop > 4) { dirty.log = true; return; }
  const shown = [];
  for (let i = S.log.size - 1; i >= 0 && shown.length < LOG_SHOWN; i--) {
    const entry = logAt(i);
    if (logMatches(entry)) shown.push(entryElement(entry));
  }
  box.replaceChildren(...shown); // newest first
  const status = S.filter.status ? ` (nodes now ${S.filter.status})` : '';
  const count = shown.length < LOG_SHOWN ? shown.length : `latest ${LOG_SHOWN}`;
  setText($('#log-count'), `${count} shown${status}, ${S.log.size} kept`);
}

/** One row, one text node, columns aligned by padding in a monospace font: the log is
 *  rebuilt several times a second, and layout cost grows with the number of boxes. */
function entryElement(entry) {
  const who = entry.node ?? entry.branch ?? '';
  const dataset = entry.node ? { type: entry.type, node: entry.node } : { type: entry.type };
  return h('div', { className: 'entry', dataset },
    `${fmtClock(entry.at)}  ${entry.type.padEnd(15)}  ${who.padEnd(22)}  ${entry.text}`);
}

/** The counts are the status filter's buttons (aria-pressed); a second click clears it. */
function setStatusFilter(status) {
  S.filter.status = status;
  refilterLog();
}

function refilterLog() {
  dirty.log = dirty.header = true;
  lastRun.log = -Infinity; // a person asked: now, not at the next tick
  $('#log').scrollTop = 0;
  schedule();
}

function updateBranchFilter(names) {
  const select = $('#branch');
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.length === names.length && have.every((v, i) => v === names[i])) return;
  const value = select.value;
  select.replaceChildren(new Option('all branches', ''), ...names.map((n) => new Option(n, n)));
  select.value = names.includes(value) ? value : '';
}

function setupLog() {
  const kind = $('#kind');
  kind.append(...EVENT_TYPES.map((t) => new Option(t, t)));
  const onFilter = () => { Object.assign(S.filter, { kind: kind.value, branch: $('#branch').value }); refilterLog(); };
  kind.addEventListener('change', onFilter);
  $('#branch').addEventListener('change', onFilter);
  const box = $('#log');
  box.addEventListener('click', (e) => {
    const row = e.target.closest('.entry[data-node]');
    if (row) selectNode(row.dataset.node, true);
  });
  box.addEventListener('scroll', () => { if (box.scrollTop <= 4 && dirty.log) schedule(); });
}

// ------------------------------------------------------------------ find box
function setupFind() {
  const input = $('#find');
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    // The exact id, else the first id that contains the text.
    const id = S.nodes.has(q) ? q : [...S.nodes.keys()].find((k) => k.includes(q));
    $('#find-msg').textContent = id ? '' : `no node matches “${q}”`;
    if (id) selectNode(id, true);
  });
}

// ------------------------------------------------------------------ start
function start() {
  S.token = readToken();
  readPalette();
  buildCounts();
  setupShutdown();
  setupLog();
  setupFind();
  GV.canvas = setupCanvas($('#graph'));
  GT.canvas = setupCanvas($('#gantt'));
  setupGraphInput(GV.canvas.el);
  setupGanttInput(GT.canvas.el);
  // For tests and measurements: read-only views of the live state.
  window.dagtrio = {
    get nodes() { return S.nodes; },
    get position() { return S.position; },
    get snapshots() { return S.snapshots; },
    get firstPaintMs() { return S.firstPaintMs; },
    get state() { return S.run; },
  };
  connect();
  markAll();
}

start();
