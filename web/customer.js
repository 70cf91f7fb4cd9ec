// forewarn console: the customer view (#/customer/<id>) and the incidents
// view (#/incidents).  Both only read, from APIs that exist for everyone
// who may read (viewer and up) and are audited as the API audits them:
//
//   customer:  GET /v1/customers/{id} (journey state, active detections,
//              recent events; audited as object "customer"),
//              GET /v1/cases?customer= (audited "case"),
//              GET /v1/detections?customer=, GET /v1/messages?customer=
//              (audited "message"), and the open case's
//              GET /v1/cases/{id}/guidance for the sentiment scores;
//   incidents: GET /v1/incidents (affected customers, the common factor)
//              and the signals' names from GET /v1/detections.
//
// Every number shown is counted from those answers; the sentiment trend is
// the scored texts' own scores (oldest first), drawn as a small SVG line.

const $ = (id) => document.getElementById(id);
let ctx = null;   // {api, esc, openCase}

export function customerInit(c) { ctx = c; }

const esc = (s) => ctx.esc(s);
const day = (t) => (t ? String(t).slice(0, 10) : "");
const when = (t) => (t ? String(t).slice(0, 16).replace("T", " ") : "");  // UTC, said in the headers
const SEV_ICON = { CRITICAL: "✖", HIGH: "▲", MEDIUM: "◆", LOW: "●" };
const sev = (s) => `<span class="sev-word sev-${esc(s)}"><span aria-hidden="true">${SEV_ICON[s] || ""}</span> ${esc(s)}</span>`;
export const customerHref = (id) => "#/customer/" + encodeURIComponent(id);

// ---- the customer ----

let shown = null;

export async function customerShow(id) {
  shown = id;
  const enc = encodeURIComponent(id);
  const [c, cases, dets, msgs] = await Promise.all([
    ctx.api("GET", `/v1/customers/${enc}`),
    ctx.api("GET", `/v1/cases?customer=${enc}&limit=200`),
    ctx.api("GET", `/v1/detections?customer=${enc}&limit=1000`),
    ctx.api("GET", `/v1/messages?customer=${enc}&limit=1000`),
  ]);
  if (shown !== id) return;
  if (c.status !== 200) {
    $("customer-body").innerHTML = `<p class="error" role="alert">Could not read the customer ${esc(id)} (${esc((c.data && c.data.error) || c.status)}).</p>`;
    return;
  }
  const open = cases.status === 200 ? cases.data.cases.filter((k) => k.state === "open") : [];
  const g = open.length ? await ctx.api("GET", `/v1/cases/${open[0].id}/guidance`) : null;
  if (shown !== id) return;
  $("customer-body").innerHTML = renderCustomer(c.data, cases.status === 200 ? cases.data.cases : [],
    dets.status === 200 ? dets.data.detections : [], msgs.status === 200 ? msgs.data.messages : [],
    g && g.status === 200 ? g.data.sentiment : null, open.length > 0);
  for (const b of $("customer-body").querySelectorAll(".open-case"))
    b.addEventListener("click", () => ctx.openCase(b.dataset.id));
}

export const customerShown = () => shown;
export function customerHide() { shown = null; }

function val(v) {
  if (v == null) return "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderCustomer(c, cases, dets, msgs, senti, hasOpen) {
  const st = c.state || {};
  const get = (k) => (st[k] ? st[k].value : null);
  const name = get("customer.name") || c.id;
  const facts = [get("customer.email"), get("customer.phone"), get("customer.tier"),
    get("customer.value") != null ? "$" + Number(get("customer.value")).toLocaleString("en-US") + "/year" : null,
    get("customer.signup_date") ? "customer since " + day(get("customer.signup_date")) : null].filter(Boolean);
  const journey = Object.keys(st).filter((k) => !k.startsWith("customer.")).sort()
    .map((k) => `<tr><th scope="row">${esc(k)}</th><td>${esc(val(st[k].value))}</td><td>${esc(when(st[k].since))}</td></tr>`).join("");
  const active = (c.active_detections || []).map((d) => `<li>${sev(d.severity)} <b>${esc(d.name || d.signal)}</b> since ${esc(when(d.fired_at))} UTC</li>`).join("");
  const caseRows = cases.map((k) => `<tr><td>${sev(k.severity)}</td>
      <td><button type="button" class="link open-case" data-id="${esc(k.id)}">${esc(k.reason || k.id)}</button></td>
      <td>${k.state === "open" ? `<b>open</b>${k.assignee ? ` · ${esc(k.assignee)}` : ""}` : esc((k.outcome || "resolved").replace(/_/g, " "))}${k.csat ? ` · CSAT ${esc(k.csat)}` : ""}</td>
      <td>${esc(day(k.opened_at))}${k.resolved_at ? " → " + esc(day(k.resolved_at)) : ""}</td></tr>`).join("");
  const detRows = [...dets].reverse().map((d) => `<tr><td>${sev(d.severity)}</td><td>${esc(d.name || d.signal)} <span class="muted">${esc(d.signal)}</span></td>
      <td>${d.state === "firing" ? "<b>firing</b>" : "resolved"}</td><td>${esc(when(d.fired_at))}${d.resolved_at ? " → " + esc(when(d.resolved_at)) : ""}</td></tr>`).join("");
  const msgRows = [...msgs].reverse().map((m) => `<tr><td>${esc(when(m.created_at))}</td><td>${esc(m.audience)} · ${esc((m.channel || "").replace(/_/g, " "))}</td>
      <td>${esc((m.status || "").replace(/_/g, " "))}</td><td>${esc(m.subject || (m.body || "").slice(0, 80))}</td></tr>`).join("");
  const firing = dets.filter((d) => d.state === "firing").length;
  const sent = msgs.filter((m) => m.status === "sent").length;
  return `<header class="cust-head">
      <p class="eyebrow">Customer</p>
      <h1 id="customer-title">${esc(name)}</h1>
      <p class="meta">${esc(facts.join(" · "))}</p>
    </header>
    <div class="cust-cols">
      <section aria-labelledby="h-journey"><h2 id="h-journey">Journey now</h2>
        ${active ? `<ul class="active-dets">${active}</ul>` : `<p class="none">No problem detected right now.</p>`}
        ${journey ? `<table class="grid"><caption class="sr-only">Journey state</caption><thead><tr><th scope="col">what</th><th scope="col">value</th><th scope="col">since (UTC)</th></tr></thead><tbody>${journey}</tbody></table>` : ""}
      </section>
      <section aria-labelledby="h-senti"><h2 id="h-senti">Mood</h2>${renderSentiment(senti, hasOpen)}</section>
    </div>
    <section aria-labelledby="h-ccases"><h2 id="h-ccases">Cases <span class="count">${cases.length}</span></h2>
      ${cases.length ? `<table class="grid"><caption class="sr-only">Cases, newest first</caption><thead><tr><th scope="col">severity</th><th scope="col">reason</th><th scope="col">state</th><th scope="col">dates</th></tr></thead><tbody>${caseRows}</tbody></table>` : `<p class="none">No case yet.</p>`}</section>
    <section aria-labelledby="h-cdets"><h2 id="h-cdets">Detections <span class="count">${dets.length}, ${firing} firing</span></h2>
      ${dets.length ? `<table class="grid"><caption class="sr-only">Detections, newest first</caption><thead><tr><th scope="col">severity</th><th scope="col">signal</th><th scope="col">state</th><th scope="col">when (UTC)</th></tr></thead><tbody>${detRows}</tbody></table>` : `<p class="none">Nothing detected.</p>`}</section>
    <section aria-labelledby="h-cmsgs"><h2 id="h-cmsgs">Messages <span class="count">${msgs.length}, ${sent} sent</span></h2>
      ${msgs.length ? `<div class="scroll" tabindex="0" role="region" aria-labelledby="h-cmsgs"><table class="grid"><caption class="sr-only">Messages, newest first</caption><thead><tr><th scope="col">when (UTC)</th><th scope="col">to · by</th><th scope="col">status</th><th scope="col">subject</th></tr></thead><tbody>${msgRows}</tbody></table></div>` : `<p class="none">No message.</p>`}</section>`;
}

// The mood: the latest label, its direction, and the scores as a line (−1 … 1).
function renderSentiment(s, hasOpen) {
  if (!hasOpen) return `<p class="none">Mood is read from an open case; this customer has none.</p>`;
  if (!s || !s.n) return `<p class="none">${esc((s && s.status) || "No words from the customer yet.")}</p>`;
  const scores = s.scores || [];
  const arrow = { dropping: "↓↓", worsening: "↓", steady: "→", improving: "↑" }[s.direction] || "";
  const head = `<p class="mood"><b>${esc(String(s.label).replace(/_/g, " "))}</b> (${esc(s.score.toFixed(2))})
    · <span aria-hidden="true">${arrow}</span> ${esc(s.direction)} · from ${esc(s.n)} text${s.n > 1 ? "s" : ""}</p>`;
  if (scores.length < 2) return head + `<p class="none">Not enough texts for a trend (${scores.length}).</p>`;
  const W = 300, H = 90, pad = 8, left = 58;
  const x = (i) => left + (i * (W - left - pad)) / (scores.length - 1);
  const y = (v) => pad + ((1 - v) / 2) * (H - 2 * pad);
  const pts = scores.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const dots = scores.map((v, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" class="${v < 0 ? "neg" : "pos"}"/>`).join("");
  return head + `<svg class="spark" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="spark-t spark-d">
      <title id="spark-t">Mood, text by text</title><desc id="spark-d">Scores from −1 to 1, oldest first: ${esc(scores.map((v) => v.toFixed(2)).join(", "))}</desc>
      <text x="0" y="${y(1) + 4}" class="ax">+1 happy</text><text x="0" y="${y(0) + 4}" class="ax">0</text><text x="0" y="${y(-1) + 2}" class="ax">−1 upset</text>
      <line x1="${left}" x2="${W - pad}" y1="${y(0)}" y2="${y(0)}" class="zero"/>
      <polyline points="${pts}" class="line"/>${dots}</svg>
    <p class="tile-n">each text the customer wrote, oldest → newest</p>`;
}

// ---- incidents ----

export async function incidentsShow() {
  const r = await ctx.api("GET", "/v1/incidents?limit=200");
  if (r.status !== 200) {
    $("incidents-body").innerHTML = `<p class="error" role="alert">Could not read the incidents (${esc((r.data && r.data.error) || r.status)}).</p>`;
    return;
  }
  const incs = [...r.data.incidents].sort((a, b) => (a.state === b.state ? (a.opened_at < b.opened_at ? 1 : -1) : a.state === "open" ? -1 : 1));
  const names = {};
  await Promise.all([...new Set(incs.map((i) => i.signal))].map(async (sig) => {
    const d = await ctx.api("GET", `/v1/detections?signal=${encodeURIComponent(sig)}&limit=1`);
    names[sig] = d.status === 200 && d.data.detections.length ? d.data.detections[0].name : sig;
  }));
  // Names, where a case knows them (one read of the cases, not one per customer).
  const cs = await ctx.api("GET", "/v1/cases?limit=500");
  const who = {};
  if (cs.status === 200) for (const k of cs.data.cases) if (k.name) who[k.customer] = k.name;
  const open = incs.filter((i) => i.state === "open").length;
  $("incidents-count").textContent = `${open} open, ${incs.length - open} resolved`;
  if (!incs.length) {
    $("incidents-body").innerHTML = `<p class="empty">No incident: no problem has hit many customers at once.</p>`;
    return;
  }
  $("incidents-body").innerHTML = `<ol class="incidents">${incs.map((i) => renderIncident(i, names[i.signal], who)).join("")}</ol>`;
}

function renderIncident(i, name, who) {
  const f = i.common_factor;
  const pct = (x) => Math.round(x * 100) + "%";
  const factor = f ? `<p class="factor"><b>What they share:</b> ${esc(f.key)} = <b>${esc(f.value)}</b>
      — ${esc(pct(f.share))} of the affected customers, against ${esc(pct(f.baseline))} of all customers</p>`
    : `<p class="factor none">No common factor: nothing the affected customers share stands out.</p>`;
  const all = i.customers || [];
  const list = all.slice(0, 200).map((c) => `<li><a href="${customerHref(c)}">${esc(who[c] || c)}</a>${who[c] ? ` <span class="muted">${esc(c)}</span>` : ""}</li>`).join("") +
    (all.length > 200 ? `<li class="none">and ${all.length - 200} more</li>` : "");
  return `<li class="incident sev-${esc(i.severity)}" data-id="${esc(i.id)}">
      <p class="sev">${sev(i.severity)} · ${i.state === "open" ? "<b>open</b>" : "resolved"} · since ${esc(when(i.opened_at))} UTC</p>
      <h2>${esc(name || i.signal)} <span class="count">${esc(i.signal)}</span></h2>
      <p class="affected"><b class="big-n">${(i.customers || []).length}</b> customers affected</p>
      ${factor}
      <details${all.length <= 10 ? " open" : ""}><summary>Who (${all.length})</summary><ul class="who-list">${list}</ul></details>
    </li>`;
}
