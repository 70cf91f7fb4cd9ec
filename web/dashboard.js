// forewarn console: the dashboard.  How the team is doing, how I am doing,
// and the leaderboard, from GET /v1/stats/outcomes, /v1/stats/me and
// /v1/leaderboard (docs/outcomes.md).  Every figure is shown with the
// count it rests on; a figure over nothing says "not enough data" rather
// than a number.  Charts are inline SVG (no library), each with the same
// numbers in its text alternative: SLA compliance by severity, and the
// median time to resolve per week over the last WEEKS weeks.  "This week"
// compares the last 7 days with the 7 before, each read with from/to
// (a case counts in the week it was resolved in), ending at the server's
// present (web/live.js), not the browser's.

const $ = (id) => document.getElementById(id);
const CLOCKS = [["first_response", "First response"], ["customer_contact", "Customer contact"], ["resolution", "Resolution"]];
const SEV_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];
const BAR_COLOURS = ["#0f4c99", "#5b7fb8", "#1d5e25"];

let ctx = null;   // {api, esc, me, now}
const WEEK = 7 * 24 * 3600 * 1000;
const WEEKS = 8;

export function dashInit(c) { ctx = c; }

const pct = (x) => Math.round(x * 100) + "%";
function dur(ms) {
  const m = Math.round(ms / 60000);
  return m < 60 ? `${m}m` : `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

// One figure: big value, label, and the count under it.
function tile(id, label, value, n, note) {
  const esc = ctx.esc;
  const none = value == null;
  return `<div class="tile" data-figure="${id}">
    <div class="tile-label">${esc(label)}</div>
    <div class="tile-value${none ? " none" : ""}">${none ? "not enough data" : esc(value)}</div>
    <div class="tile-n">${[n == null ? "" : `n = ${esc(n)}`, note ? esc(note) : ""].filter(Boolean).join(" · ")}</div></div>`;
}

function teamTiles(t) {
  const out = [tile("resolved", "Cases resolved", t.cases_resolved, null, `${t.saved} saved`)];
  for (const [k, w] of CLOCKS) {
    const s = t.sla && t.sla[k];
    out.push(tile("sla-" + k, `SLA met: ${w.toLowerCase()}`, s && s.n && s.compliance != null ? pct(s.compliance) : null,
      s ? s.n : 0, s && s.n ? `${s.breached} breached` : ""));
  }
  const r = t.resolution_ms || {};
  out.push(tile("resolution", "Median time to resolve", r.n ? dur(r.median) : null, r.n || 0));
  const c = t.csat || {};
  out.push(tile("csat", "CSAT (1-5)", c.n ? c.mean.toFixed(1) : null, c.n || 0));
  out.push(tile("saves", "Saves", t.saved, t.cases_resolved));
  const p = t.prevention || {};
  out.push(tile("prevention", "Tickets prevented", p.n ? pct(p.rate) : null, p.n || 0,
    p.n ? `${p.prevented} of ${p.n} messages, no ticket in 7 days` : ""));
  return out.join("");
}

// SLA compliance by severity: one group of three bars per severity.
function chart(sevs) {
  const esc = ctx.esc;
  const rows = SEV_ORDER.filter((s) => sevs[s]);
  if (!rows.length) return `<p class="none">Not enough data: no case resolved yet.</p>`;
  const W = 400, left = 82, right = 44, bar = 12, gap = 3, groupGap = 14;
  const groupH = CLOCKS.length * (bar + gap) + groupGap;
  const H = rows.length * groupH + 30;
  const scale = (W - left - right);
  let g = "", alt = [];
  rows.forEach((sev, i) => {
    const y0 = i * groupH + 4;
    g += `<text x="0" y="${y0 + 22}" class="ax">${esc(sev)}</text>`;
    CLOCKS.forEach(([k, w], j) => {
      const s = sevs[sev].sla[k];
      const y = y0 + j * (bar + gap);
      const has = s && s.n && s.compliance != null;
      const wdt = has ? Math.max(1, s.compliance * scale) : 0;
      g += `<rect x="${left}" y="${y}" width="${scale}" height="${bar}" fill="#eef1f5"/>`;
      if (has) g += `<rect x="${left}" y="${y}" width="${wdt.toFixed(1)}" height="${bar}" fill="${BAR_COLOURS[j]}"/>`;
      g += `<text x="${left + scale + 6}" y="${y + bar - 2}" class="val">${has ? pct(s.compliance) : "n/a"}</text>`;
      alt.push(`${sev} ${w.toLowerCase()}: ${has ? pct(s.compliance) + ` of ${s.n}` : "not enough data"}`);
    });
  });
  const axisY = rows.length * groupH + 8;
  for (const f of [0, 0.5, 1])
    g += `<text x="${left + f * scale}" y="${axisY + 12}" class="ax tick" text-anchor="middle">${f * 100}%</text>`;
  const legend = CLOCKS.map(([, w], j) => `<span class="key"><span class="swatch sw${j}"></span>${esc(w)}</span>`).join("");
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-title chart-desc">
      <title id="chart-title">SLA compliance by severity</title><desc id="chart-desc">${esc(alt.join("; "))}</desc>${g}</svg>
    <div class="legend" aria-hidden="true">${legend}</div>`;
}

function mine(me) {
  const esc = ctx.esc;
  if (!me) return `<p class="none">Sign in as a user to see your own figures, streak and achievements.</p>`;
  const c = me.csat || {};
  const ach = (me.achievements || []).map((a) =>
    `<li title="${esc(a.rule)}"><span aria-hidden="true">★</span> <b>${esc(a.name)}</b>${a.count > 1 ? ` ×${esc(a.count)}` : ""}</li>`).join("");
  return `<div class="tiles small-tiles">
      ${tile("my-resolved", "I resolved", me.cases_resolved, null, `${me.saved} saved`)}
      ${tile("my-streak", "Streak without a breach", me.streak, null, "cases in a row")}
      ${tile("my-csat", "My CSAT", c.n ? c.mean.toFixed(1) : null, c.n || 0)}
    </div>
    <h3>Achievements</h3>${ach ? `<ul class="achievements">${ach}</ul>` : `<p class="none">None yet: resolve a case as saved for your first.</p>`}`;
}

function board(rows, meName) {
  const esc = ctx.esc;
  if (!rows.length) return `<p class="none">Nobody has resolved a case yet.</p>`;
  const body = rows.map((r, i) => `<tr${r.agent === meName ? ' class="me"' : ""} data-agent="${esc(r.agent)}">
      <td>${i + 1}</td><td>${esc(r.agent)}${r.agent === meName ? " (you)" : ""}</td><td class="num">${esc(r.saved)}</td>
      <td class="num">${esc(r.cases_resolved)}</td><td class="num">${r.csat && r.csat.n ? r.csat.mean.toFixed(1) : "—"}</td>
      <td class="num">${esc(r.streak)}</td></tr>`).join("");
  return `<table class="board"><caption class="sr-only">Leaderboard, most saves first</caption>
    <thead><tr><th scope="col">#</th><th scope="col">Agent</th><th scope="col" class="num">Saves</th><th scope="col" class="num">Resolved</th>
    <th scope="col" class="num">CSAT</th><th scope="col" class="num">Streak</th></tr></thead><tbody>${body}</tbody></table>`;
}

const iso = (ms) => new Date(ms).toISOString();

// The last WEEKS weeks' outcomes, oldest first: [{from, to, team}] (team null when unread).
async function weekly(now) {
  const spans = [];
  for (let i = WEEKS - 1; i >= 0; i--) spans.push([now - (i + 1) * WEEK, now - i * WEEK]);
  return Promise.all(spans.map(async ([f, t]) => {
    const r = await ctx.api("GET", `/v1/stats/outcomes?from=${iso(f)}&to=${iso(t)}`);
    return { from: f, to: t, team: r.status === 200 ? r.data.team : null };
  }));
}

// One figure this week against last week: the value, an arrow and the word,
// and the counts both rest on.  Rates and times are better or worse
// (higherIsBetter says which way); counts (null) are only more or fewer,
// which by itself is neither.
function trendTile(id, label, cur, prev, fmt, higherIsBetter) {
  const esc = ctx.esc;
  const has = (x) => x && x.n > 0 && x.v != null;
  let trend;
  if (!has(cur)) trend = `<div class="trend none">no case this week</div>`;
  else if (!has(prev)) trend = `<div class="trend none">not enough history: nothing the week before</div>`;
  else {
    const d = cur.v - prev.v;
    const same = Math.abs(d) < 1e-9;
    const judged = higherIsBetter !== null;
    const good = same || !judged ? null : (d > 0) === higherIsBetter;
    const word = same ? "same" : !judged ? (d > 0 ? "more" : "fewer") : good ? "better" : "worse";
    const arrow = same ? "→" : d > 0 ? "▲" : "▼";
    const cls = same || !judged ? "same" : good ? "up" : "down";
    trend = `<div class="trend ${cls}"><span aria-hidden="true">${arrow}</span> ${word} than the week before (${esc(fmt(prev.v))})</div>`;
  }
  return `<div class="tile" data-figure="${id}">
    <div class="tile-label">${esc(label)}</div>
    <div class="tile-value${has(cur) ? "" : " none"}">${has(cur) ? esc(fmt(cur.v)) : "not enough data"}</div>
    ${trend}
    <div class="tile-n">n = ${esc(cur ? cur.n : 0)} this week, ${esc(prev ? prev.n : 0)} the week before</div></div>`;
}

function figures(t) {
  if (!t) return {};
  const r = t.resolution_ms || {}, c = t.csat || {}, s = (t.sla && t.sla.resolution) || {};
  return {
    resolved: { v: t.cases_resolved, n: t.cases_resolved },
    saved: { v: t.saved, n: t.cases_resolved },
    median: { v: r.n ? r.median : null, n: r.n || 0 },
    csat: { v: c.n ? c.mean : null, n: c.n || 0 },
    sla: { v: s.n && s.compliance != null ? s.compliance : null, n: s.n || 0 },
  };
}

function weekTiles(weeks) {
  const cur = figures(weeks[weeks.length - 1].team), prev = figures(weeks[weeks.length - 2].team);
  const count = (x) => String(x);
  // Counts always have a value; "no case this week" only when nothing was resolved.
  const zeroOk = (x) => (x ? { v: x.v, n: Math.max(x.n, 1) } : x);
  return [
    trendTile("week-resolved", "Cases resolved", zeroOk(cur.resolved), zeroOk(prev.resolved), count, null),
    trendTile("week-saved", "Saves", cur.saved, prev.saved, count, null),
    trendTile("week-median", "Median time to resolve", cur.median, prev.median, dur, false),
    trendTile("week-sla", "SLA met: resolution", cur.sla, prev.sla, pct, true),
    trendTile("week-csat", "CSAT (1-5)", cur.csat, prev.csat, (x) => x.toFixed(1), true),
  ].join("");
}

// Median time to resolve per week: a line with a point per week that had
// resolutions (a gap where none), the count under each week.
function resolutionChart(weeks) {
  const esc = ctx.esc;
  const pts = weeks.map((w, i) => ({ i, w, r: w.team && w.team.resolution_ms }));
  const withData = pts.filter((p) => p.r && p.r.n);
  if (withData.length < 2) return `<p class="none">Not enough history: ${withData.length} week${withData.length === 1 ? "" : "s"} with resolved cases; the chart needs two.</p>`;
  const W = 400, H = 170, left = 46, right = 22, top = 10, bottom = 38;
  const max = Math.max(...withData.map((p) => p.r.median));
  const hours = max / 3600000;
  const stepH = hours <= 4 ? 1 : hours <= 12 ? 3 : hours <= 48 ? 12 : 24;
  const yMax = Math.max(stepH, Math.ceil(hours / stepH) * stepH) * 3600000;
  const x = (i) => left + (i * (W - left - right)) / (weeks.length - 1);
  const y = (v) => top + (1 - v / yMax) * (H - top - bottom);
  let g = "";
  for (let v = 0; v <= yMax; v += stepH * 3600000)
    g += `<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid-line"/>
      <text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" class="ax tick" text-anchor="end">${v / 3600000}h</text>`;
  // Segments join consecutive weeks with data; a week without breaks the line.
  let path = "", prev = null;
  for (const p of pts) {
    if (p.r && p.r.n) { path += `${prev !== null && prev === p.i - 1 ? "L" : "M"}${x(p.i).toFixed(1)},${y(p.r.median).toFixed(1)} `; prev = p.i; }
  }
  g += `<path d="${path}" class="res-line"/>`;
  const alt = [];
  for (const p of pts) {
    const label = new Date(p.w.from).toISOString().slice(5, 10);
    g += `<text x="${x(p.i).toFixed(1)}" y="${H - bottom + 16}" class="ax tick" text-anchor="middle">${label}</text>
      <text x="${x(p.i).toFixed(1)}" y="${H - bottom + 30}" class="ax tick" text-anchor="middle">n=${p.r ? p.r.n : 0}</text>`;
    if (p.r && p.r.n) g += `<circle cx="${x(p.i).toFixed(1)}" cy="${y(p.r.median).toFixed(1)}" r="4" class="res-dot"/>`;
    alt.push(`week from ${label}: ${p.r && p.r.n ? dur(p.r.median) + ` median of ${p.r.n}` : "no case resolved"}`);
  }
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="res-title res-desc">
    <title id="res-title">Median time to resolve, week by week</title><desc id="res-desc">${esc(alt.join("; "))}</desc>${g}</svg>
    <p class="tile-n">Weeks start on the date shown (UTC); n = cases resolved that week.</p>`;
}

export async function dashRefresh() {
  const now = ctx.now();
  const [o, m, l, weeks] = await Promise.all([ctx.api("GET", "/v1/stats/outcomes"), ctx.api("GET", "/v1/stats/me"),
    ctx.api("GET", "/v1/leaderboard"), weekly(now)]);
  if (o.status !== 200) { $("dash-team").innerHTML = `<p class="error">Could not read the outcomes (${o.status}).</p>`; return; }
  const me = ctx.me();
  $("dash-team").innerHTML = `<div class="tiles">${teamTiles(o.data.team)}</div>`;
  $("dash-chart").innerHTML = chart(o.data.severities || {});
  $("dash-week").innerHTML = `<div class="tiles">${weekTiles(weeks)}</div>`;
  $("dash-restime").innerHTML = resolutionChart(weeks);
  $("dash-me").innerHTML = mine(m.status === 200 ? m.data : null);
  $("dash-board").innerHTML = board(l.status === 200 ? l.data.leaderboard : [], me && me.name);
}
