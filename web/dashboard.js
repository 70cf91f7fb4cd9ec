// forewarn console: the dashboard.  How the team is doing, how I am doing,
// and the leaderboard, from GET /v1/stats/outcomes, /v1/stats/me and
// /v1/leaderboard (docs/outcomes.md).  Every figure is shown with the
// count it rests on; a figure over nothing says "not enough data" rather
// than a number.  One chart, SLA compliance by severity, is drawn as
// inline SVG (no library), with the same numbers in its text alternative.

const $ = (id) => document.getElementById(id);
const CLOCKS = [["first_response", "First response"], ["customer_contact", "Customer contact"], ["resolution", "Resolution"]];
const SEV_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];
const BAR_COLOURS = ["#0f4c99", "#5b7fb8", "#1d5e25"];

let ctx = null;   // {api, esc, me}

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

export async function dashRefresh() {
  const [o, m, l] = await Promise.all([ctx.api("GET", "/v1/stats/outcomes"), ctx.api("GET", "/v1/stats/me"),
    ctx.api("GET", "/v1/leaderboard")]);
  if (o.status !== 200) { $("dash-team").innerHTML = `<p class="error">Could not read the outcomes (${o.status}).</p>`; return; }
  const me = ctx.me();
  $("dash-team").innerHTML = `<div class="tiles">${teamTiles(o.data.team)}</div>`;
  $("dash-chart").innerHTML = chart(o.data.severities || {});
  $("dash-me").innerHTML = mine(m.status === 200 ? m.data : null);
  $("dash-board").innerHTML = board(l.status === 200 ? l.data.leaderboard : [], me && me.name);
}
