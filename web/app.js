// forewarn console: the queue screen and the page's frame.  Plain ES
// modules, no framework; the case view is web/case.js.
//
// Time: every countdown is computed from the server's `now` and each case's
// due time (GET /v1/queue), never from the page's clock (web/live.js keeps
// the server's clock).  Live: the page listens to GET /v1/stream (Server-
// Sent Events, web/live.js) and re-reads the queue, the open case and the
// dashboard when the server says something changed, so a moved clock, a new
// case or another agent's action shows without a reload and without polling.
//
// Auth: GET /v1/session says who we are; a token is exchanged for an
// HttpOnly session cookie by POST /v1/session, and every change sends the
// session's CSRF value in X-Forewarn-CSRF (docs/console.md).

import { caseInit, caseKey, caseLive, caseOpen } from "./case.js";
import { dashInit, dashRefresh } from "./dashboard.js";
import { liveStart, liveStop, serverNow, setServerNow } from "./live.js";
import { customerHide, customerInit, customerShow, customerShown, incidentsShow } from "./customer.js";

const $ = (id) => document.getElementById(id);
const SEVERITIES = [
  ["CRITICAL", "✖", "Critical"], ["HIGH", "▲", "High"], ["MEDIUM", "◆", "Medium"], ["LOW", "●", "Low"],
];
const FILTERS = [["", "All"], ["mine", "Mine"], ["unassigned", "Unassigned"], ["breaching_soon", "Breaching soon"]];
const WORK_ROLES = new Set(["agent", "lead", "admin"]);

const state = {
  me: null, csrf: null, queue: null, fetchedAt: 0,
  severity: "", filter: "", selected: 0, ticker: null,
};

// ---- API ----

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-Forewarn-CSRF"] = state.csrf;
  const r = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch { /* empty body */ }
  if (r.status === 401 && path !== "/v1/session") showSignin("Your session ended. Sign in again.");
  return { status: r.status, data };
}

// ---- sign in / out ----

function showSignin(message) {
  stopQueue(); liveStop();
  state.me = null; state.csrf = null;
  $("queue").hidden = true; $("dashboard").hidden = true; $("screens").hidden = true;
  $("customer").hidden = true; $("incidents").hidden = true;
  $("who").hidden = true; $("signout").hidden = true;
  $("signin").hidden = false;
  const err = $("signin-error");
  err.hidden = !message; err.textContent = message || "";
  $("token").focus();
}

function signedIn(me) {
  state.me = me; state.csrf = me.csrf;
  $("signin").hidden = true; $("screens").hidden = false;
  $("who").hidden = false;
  $("who").textContent = me.authenticated ? `${me.name} · ${me.role}` : "no sign-in configured · admin";
  $("signout").hidden = !me.authenticated;
  $("next").hidden = !canWork();
  buildToolbar();
  liveStart(onLive);
  route();
}

// What the stream says changed: re-read what is on screen (coalesced).
function onLive(kind, data) {
  if (kind === "hello") return;
  if (!$("queue").hidden) refreshSoon();
  if (!$("dashboard").hidden && kind !== "clock") dashSoon();
  if (!$("customer").hidden && kind !== "clock") customerSoon();
  if (!$("incidents").hidden && kind !== "clock") incidentsSoon();
  caseLive(kind, data);
  if (kind === "clock") tick();
}

// At most one read in flight per screen; a change during it asks for one more.
function coalesced(fn) {
  let running = false, again = false;
  return async () => {
    if (running) { again = true; return; }
    running = true;
    try { do { again = false; await fn(); } while (again); } finally { running = false; }
  };
}
const refreshSoon = coalesced(() => refresh());
const dashSoon = coalesced(() => dashRefresh());
const customerSoon = coalesced(() => customerShown() && customerShow(customerShown()));
const incidentsSoon = coalesced(() => incidentsShow());

// ---- screens: #/queue (the default), #/incidents, #/dashboard, #/customer/<id> ----

const SCREENS = { queue: "queue", incidents: "incidents", dashboard: "dashboard", customer: "customer" };

function route() {
  if (!state.me) return;
  const m = location.hash.match(/^#\/(queue|incidents|dashboard|customer)(?:\/(.+))?$/);
  const screen = m ? SCREENS[m[1]] : "queue";
  for (const id of Object.values(SCREENS)) $(id).hidden = id !== screen;
  for (const a of $("screens").querySelectorAll("a")) a.removeAttribute("aria-current");
  if (screen !== "customer") $("to-" + screen).setAttribute("aria-current", "page");
  stopQueue();
  if (screen !== "customer") customerHide();
  if (screen === "dashboard") dashRefresh();
  else if (screen === "incidents") incidentsShow();
  else if (screen === "customer") {
    let id = "";
    try { id = decodeURIComponent(m[2] || ""); } catch { id = ""; }
    $("customer-body").innerHTML = `<p class="loading">Loading…</p>`;
    customerShow(id).then(() => { document.title = "forewarn — " + ($("customer-title")?.textContent || id); });
  } else startQueue();
  document.title = "forewarn — " + screen;
  if ($("case-dialog").open && screen === "customer") $("case-dialog").close();
}
window.addEventListener("hashchange", route);

const canWork = () => state.me && WORK_ROLES.has(state.me.role);

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  const r = await api("POST", "/v1/session", { token });
  if (r.status === 200) { $("token").value = ""; signedIn(r.data); return; }
  showSignin(r.status === 401 ? "That token did not work: it may be mistyped, expired or revoked. Ask your lead for a new one."
    : (r.data && r.data.error) || `Sign-in failed (${r.status}).`);
});

$("signout").addEventListener("click", async () => {
  await api("DELETE", "/v1/session");
  showSignin("You are signed out.");
});

// ---- toolbar ----

function buildToolbar() {
  const tabs = $("tabs"); tabs.textContent = "";
  for (const [sev, icon, word] of [["", "☰", "All"], ...SEVERITIES]) {
    const b = document.createElement("button");
    b.className = "tab"; b.setAttribute("role", "tab"); b.dataset.severity = sev;
    b.setAttribute("aria-selected", String(state.severity === sev));
    b.innerHTML = `<span aria-hidden="true">${icon}</span> ${sev || word.toUpperCase()} (<span class="n">0</span>)`;
    b.addEventListener("click", () => { state.severity = sev; state.selected = 0; buildToolbar(); refresh(); });
    tabs.append(b);
  }
  const filters = $("filters"); filters.textContent = "";
  for (const [f, word] of FILTERS) {
    if (f === "mine" && !canWork()) continue;
    const b = document.createElement("button");
    b.className = "filter"; b.dataset.filter = f; b.textContent = word;
    b.setAttribute("aria-pressed", String(state.filter === f));
    b.addEventListener("click", () => { state.filter = f; state.selected = 0; buildToolbar(); refresh(); });
    filters.append(b);
  }
  updateCounts();
}

function updateCounts() {
  const c = state.queue && state.queue.counts;
  for (const b of $("tabs").children) {
    const sev = b.dataset.severity;
    b.querySelector(".n").textContent = c ? (sev ? c.severity[sev] : c.total) : "…";
  }
}

// ---- the queue ----

// The queue is read when shown and when the stream says something changed;
// the ticker only repaints the countdowns from the server's clock.
function startQueue() {
  stopQueue();
  refresh();
  state.ticker = setInterval(tick, 1000);
}
function stopQueue() {
  clearInterval(state.ticker);
  state.ticker = null;
}

async function refresh() {
  const q = new URLSearchParams();
  if (state.severity) q.set("severity", state.severity);
  if (state.filter) q.set("filter", state.filter);
  const r = await api("GET", "/v1/queue" + (q.size ? "?" + q : ""));
  if (r.status !== 200) { if (r.status !== 401) status(`Could not read the queue (${r.status}).`); return; }
  state.queue = r.data; setServerNow(r.data.now, r.data.clock);
  updateCounts();
  renderCards();
}

function span(ms) {
  const m = Math.floor(Math.abs(ms) / 60000);
  if (m < 1) return "under a minute";
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

// {cls, text, icon} for a card's tightest clock at the server's present.
function timeLeft(card) {
  const t = card.tightest;
  if (!t || !t.due) return { cls: "t-none", text: "no clock running", icon: "—" };
  const left = Date.parse(t.due) - serverNow();
  if (left <= 0) return { cls: "t-breached", text: `breached ${span(left)} ago`, icon: "✖" };
  const warn = left <= (state.queue.warn_before_ms || 0);
  return { cls: warn ? "t-warn" : "t-ok", text: `${span(left)} left`, icon: warn ? "⚠" : "◷" };
}

function tick() {
  if (!state.queue) return;
  for (const li of $("cards").children) {
    const card = state.queue.cases.find((c) => c.id === li.dataset.id);
    if (card) paintTime(li.querySelector(".time"), card);
  }
}

function paintTime(el, card) {
  const t = timeLeft(card);
  el.className = "time " + t.cls;
  el.dataset.state = t.cls.slice(2);
  el.querySelector(".left").textContent = `${t.icon} ${t.text}`;
  el.querySelector(".metric").textContent = card.tightest ? "· " + card.tightest.metric.replace("_", " ") : "";
}

const money = (v) => v == null ? null : "$" + Math.round(v).toLocaleString("en-US") + "/year";
function tenure(days) {
  if (days == null) return null;
  if (days >= 365) { const y = Math.floor(days / 365); return `${y} year${y > 1 ? "s" : ""} a customer`; }
  if (days >= 60) return `${Math.floor(days / 30)} months a customer`;
  return `${days} days a customer`;
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderCards() {
  const ol = $("cards");
  const cases = state.queue.cases;
  $("empty").hidden = cases.length > 0;
  if (state.selected >= cases.length) state.selected = Math.max(0, cases.length - 1);
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".card")?.dataset.id;
  ol.textContent = "";
  cases.forEach((c, i) => {
    const li = document.createElement("li");
    li.className = `card sev-${c.severity}` + (i === state.selected ? " selected" : "");
    li.dataset.id = c.id; li.tabIndex = -1;
    const sev = SEVERITIES.find((s) => s[0] === c.severity) || ["", "", c.severity];
    const mine = c.assignee && state.me && c.assignee === state.me.name;
    const meta = [money(c.value), tenure(c.tenure_days), c.tier,
      c.assignee ? (mine ? "yours" : `with ${c.assignee}`) : "nobody has it yet"].filter(Boolean).join(" · ");
    li.innerHTML = `
      <div class="head">
        <div class="sev"><span aria-hidden="true">${sev[1]}</span> ${esc(c.severity)}</div>
        <h2 class="name"><button class="open" title="Open the case (Enter)">${esc(c.name || c.customer)}</button></h2>
        <p class="reason">${esc(c.reason)}</p>
        <div class="meta">${esc(meta)}</div>
      </div>
      <div class="time"><div class="label">TIME LEFT <span class="metric"></span></div><div class="left"></div></div>
      <p class="say"><b>Do this:</b> ${esc(c.next_step || "Open the case and read the guidance.")}</p>
      <div class="actions"></div>`;
    paintTime(li.querySelector(".time"), c);
    const actions = li.querySelector(".actions");
    if (canWork() && (!c.assignee || mine || state.me.role !== "agent")) {
      const primary = document.createElement("button");
      primary.className = "primary act-primary";
      if (mine) {
        primary.textContent = "✓ I contacted them";
        primary.addEventListener("click", () => act(c, "respond", { channel: "call" }, `Logged your contact with ${c.name}.`));
      } else {
        primary.textContent = "Take this case →";
        primary.addEventListener("click", () => act(c, "assign", {}, `${c.name} is yours now. ${c.next_step || ""}`));
      }
      const skip = document.createElement("button");
      skip.className = "secondary act-skip"; skip.textContent = "Skip…";
      skip.addEventListener("click", () => askSkip(c));
      actions.append(primary, skip);
    } else if (!canWork()) {
      actions.innerHTML = `<span class="readonly">View only: your role (${esc(state.me.role)}) can read cases, not work them.</span>`;
    }
    li.querySelector(".open").addEventListener("click", () => openCase(c));
    li.addEventListener("click", () => select(i, false));
    ol.append(li);
  });
  if (focusedId) ol.querySelector(`[data-id="${focusedId}"]`)?.focus();
}

function select(i, focus = true) {
  const items = $("cards").children;
  if (!items.length) return;
  state.selected = Math.max(0, Math.min(items.length - 1, i));
  [...items].forEach((li, j) => li.classList.toggle("selected", j === state.selected));
  if (focus) { items[state.selected].focus(); items[state.selected].scrollIntoView({ block: "nearest" }); }
}

function status(text) { $("status").textContent = text; }

async function act(card, action, body, done) {
  const r = await api("POST", `/v1/cases/${card.id}/${action}`, body);
  status(r.status === 200 ? done : `Could not ${action}: ${(r.data && r.data.error) || r.status}`);
  await refresh();
  return r;
}

// ---- skip (a reason is required) ----

let skipping = null;
function askSkip(card) {
  skipping = card;
  $("skip-reason").value = ""; $("skip-error").hidden = true;
  $("skip-dialog").showModal(); $("skip-reason").focus();
}
$("skip-cancel").addEventListener("click", () => $("skip-dialog").close());
$("skip-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const reason = $("skip-reason").value.trim();
  if (!reason) { $("skip-error").textContent = "Say why, so the next person knows."; $("skip-error").hidden = false; return; }
  const r = await act(skipping, "skip", { reason }, `Skipped ${skipping.name}: ${reason}`);
  if (r.status === 200) $("skip-dialog").close();
  else { $("skip-error").textContent = (r.data && r.data.error) || `Refused (${r.status})`; $("skip-error").hidden = false; }
});

// ---- guided mode ----

async function nextCase() {
  if (!canWork()) return;
  const r = await api("POST", "/v1/queue/next");
  if (r.status !== 200) { status(`Could not take the next case: ${(r.data && r.data.error) || r.status}`); return; }
  if (!r.data.case && !r.data.id) { status("Nothing left for you: every case is taken or skipped."); return; }
  const c = r.data.case && typeof r.data.case === "object" ? r.data.case : r.data;
  await refresh();
  const i = state.queue.cases.findIndex((x) => x.id === c.id);
  const card = i >= 0 ? state.queue.cases[i] : c;
  if (i >= 0) select(i);
  status(`Your case now: ${card.name || card.customer || card.id}. ${card.next_step || ""}`);
}
$("next").addEventListener("click", nextCase);

// ---- the case view (web/case.js) ----

function openCase(card) { return caseOpen(card.id); }
caseInit({ api, esc, me: () => state.me, canWork, refresh: () => { if (!$("queue").hidden) refresh(); }, status });
dashInit({ api, esc, me: () => state.me, now: serverNow });
customerInit({ api, esc, openCase: (id) => caseOpen(id) });
$("help-close").addEventListener("click", () => $("help-dialog").close());

// ---- keyboard ----
// The queue: j/k move, Enter opens, p presses the selected card's primary
// button, s skips it, n takes the next case; q and d switch screens; ? is
// the help.  In the case view, case.js's keys (caseKey).  Esc closes any
// dialog (the browser does it).  Keys never fire while typing in a field.

document.addEventListener("keydown", (e) => {
  if (!state.me || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.matches && e.target.matches("input, textarea, select")) return;
  if (e.key === "?") {
    if (!$("help-dialog").open) $("help-dialog").showModal();
    e.preventDefault();
    return;
  }
  if ($("help-dialog").open || $("skip-dialog").open) return;
  if ($("case-dialog").open) { if (caseKey(e.key)) e.preventDefault(); return; }
  if (e.key === "q") { location.hash = "#/queue"; e.preventDefault(); return; }
  if (e.key === "d") { location.hash = "#/dashboard"; e.preventDefault(); return; }
  if (e.key === "i") { location.hash = "#/incidents"; e.preventDefault(); return; }
  if ($("queue").hidden) return;
  const cases = state.queue ? state.queue.cases : [];
  const card = $("cards").children[state.selected];
  if (e.key === "j") { select(state.selected + 1); e.preventDefault(); }
  else if (e.key === "k") { select(state.selected - 1); e.preventDefault(); }
  else if (e.key === "Enter" && cases[state.selected] && !e.target.matches("button, a")) { openCase(cases[state.selected]); e.preventDefault(); }
  else if (e.key === "n") { nextCase(); e.preventDefault(); }
  else if (e.key === "p" && card) { card.querySelector(".act-primary")?.click(); e.preventDefault(); }
  else if (e.key === "s" && card) { card.querySelector(".act-skip")?.click(); e.preventDefault(); }
});

// ---- start ----

(async () => {
  const r = await api("GET", "/v1/session");
  if (r.status === 200) signedIn(r.data); else showSignin();
})();
