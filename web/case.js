// forewarn console: the case view.  One dialog, re-drawn from the server
// after every change, so what it shows is always what the server holds.
//
// Reads GET /v1/cases/{id} (the case, its playbook steps, its messages'
// ids and the timeline) and, while it is open, GET /v1/cases/{id}/guidance
// (the words to say).  Changes: steps (complete, skip with a reason),
// notes, resolve (outcome and CSAT), and the case's messages awaiting
// approval (approve, edit, reject).  Every change goes through ctx.api,
// which sends the session's X-Forewarn-CSRF header.
//
// Roles: a viewer gets no control at all; an agent gets them on their own
// and unassigned cases (notes on any); a lead or admin on every case, and
// only they act on messages: what the API allows (docs/cases.md,
// docs/security.md).

const $ = (id) => document.getElementById(id);
const OUTCOMES = [
  ["saved", "Saved: they are staying"], ["resolved", "Resolved: problem fixed"],
  ["churned", "Churned: they left"], ["no_action", "No action was needed"],
];

let ctx = null;          // {api, esc, me, canWork, refresh, status}
let current = null;      // the case id shown
let pending = null;      // {messages: [...]} of the last draw
let stale = false;       // the server changed the case while the user was typing
let flashText = "";      // the last action's outcome, kept across live redraws
let drawSeq = 0;         // the newest draw wins; an older one finishing later is dropped

export function caseInit(c) {
  ctx = c;
  $("case-close").addEventListener("click", () => $("case-dialog").close());
  $("case-dialog").addEventListener("close", () => { current = null; stale = false; ctx.refresh(); });
  // A change that arrived while the user was typing is drawn once they leave the form.
  $("case-body").addEventListener("focusout", () => setTimeout(() => {
    if (stale && current && !editing()) { stale = false; draw(undefined, true); }
  }, 0));
}

// The user is in the middle of something a redraw would wipe: a field has
// focus, or an edit, reject or skip form is open.
function editing() {
  const body = $("case-body");
  const a = document.activeElement;
  if (a && body.contains(a) && a.matches("input, textarea, select")) return true;
  return !!body.querySelector(".msg-edit-form:not([hidden]), .msg-reject-form:not([hidden]), .step-skip-form:not([hidden])");
}

// The live stream (web/live.js): redraw the open case when it is the one
// that changed (or when the server cannot say which), unless the user is
// typing; then it is redrawn when they leave the form.
export function caseLive(kind, data) {
  if (!current || kind === "clock" || kind === "hello") return;
  const mine = kind === "reset" || data.any || data.messages || (data.cases || []).includes(current);
  if (!mine) return;
  if (editing()) { stale = true; return; }
  draw(undefined, true);
}

export async function caseOpen(id) {
  current = id; flashText = ""; stale = false;
  $("case-body").innerHTML = `<p class="loading">Loading the case…</p>`;
  if (!$("case-dialog").open) $("case-dialog").showModal();
  await draw();
}

const esc = (s) => ctx.esc(s);

function canAct(c) {
  if (!ctx.canWork()) return false;
  const me = ctx.me();
  return c.state === "open" && (!c.assignee || c.assignee === me.name || me.role !== "agent");
}
// Messages are approved, edited and rejected by a lead or an admin (docs/security.md).
const canApprove = () => ctx.canWork() && ctx.me().role !== "agent";
const canNote = (c) => ctx.canWork() && c.state === "open";

// Draw the case from the server.  flash: the outcome of the user's action
// (kept until the next one).  live: a redraw the user did not ask for; it
// is put off (stale) when, by the time the answers are in, they are typing.
async function draw(flash, live = false) {
  const id = current;
  const seq = ++drawSeq;
  if (flash !== undefined) flashText = flash;
  const r = await ctx.api("GET", `/v1/cases/${id}`);
  if (id !== current) return;
  if (r.status !== 200) {
    $("case-body").innerHTML = `<p class="error" role="alert">Could not read the case (${esc((r.data && r.data.error) || r.status)}).</p>`;
    return;
  }
  const c = r.data;
  const g = c.state === "open" ? await ctx.api("GET", `/v1/cases/${id}/guidance`) : { status: 409 };
  const guidance = g.status === 200 ? g.data : null;
  const msgs = await Promise.all((c.messages || []).map((m) => ctx.api("GET", `/v1/messages/${m}`)));
  const awaiting = msgs.filter((m) => m.status === 200 && m.data.status === "awaiting_approval").map((m) => m.data);
  if (id !== current || seq !== drawSeq) return;
  if (live && editing()) { stale = true; return; }
  pending = { messages: awaiting };
  const scrollTop = $("case-dialog").scrollTop;
  $("case-body").innerHTML = render(c, guidance, awaiting, flashText);
  wire(c);
  $("case-dialog").scrollTop = scrollTop;
}

// ---- drawing ----

function render(c, g, awaiting, flash) {
  const act = canAct(c);
  const who = c.assignee ? (c.assignee === ctx.me().name ? "yours" : `with ${c.assignee}`) : "nobody has it yet";
  const head = `<header class="case-head sev-${esc(c.severity)}">
      <p class="sev">${esc(c.severity)} · ${c.state === "open" ? esc(who) : "resolved"}</p>
      <h2 id="case-title"><a class="cust-link" href="#/customer/${encodeURIComponent(c.customer)}" title="The customer's page (u)">${esc(c.name || c.customer)}</a> — ${esc(c.reason)}</h2>
      ${c.state !== "open" ? `<p class="resolved-note">✓ Resolved${c.outcome ? ": " + esc(c.outcome.replace("_", " ")) : ""}${c.csat ? ` · CSAT ${esc(c.csat)}/5` : ""}${c.resolved_by ? ` · by ${esc(c.resolved_by)}` : ""}</p>` : ""}
      ${!ctx.canWork() ? `<p class="readonly">View only: your role (${esc(ctx.me().role)}) can read this case, not work it.</p>`
        : c.state === "open" && !act ? `<p class="readonly">This case is ${esc(who)}: you can add notes; the rest is theirs.</p>` : ""}
      <p class="case-flash" role="status" aria-live="polite">${esc(flash || "")}</p>
    </header>`;
  return `<article class="case-view">${head}
    <div class="case-cols">
      <div class="col">${renderGuidance(g)}</div>
      <div class="col">${renderSteps(c, act)}${renderMessages(awaiting, canApprove())}${renderResolve(c, act)}${renderNotes(c)}${renderTimeline(c)}</div>
    </div></article>`;
}

/* The playbook's action type and urgency, as an agent would say them. */
const ACTION = {
  call: "call the customer", email: "email the customer", sms: "text the customer",
  offer: "make the customer an offer", credit: "credit the customer's account",
  follow_up: "follow up with the customer", internal: "get the right people inside on it",
};
const URGENCY = { immediate: "Do this now", today: "Do this today", this_week: "Do this this week" };

function renderGuidance(g) {
  if (!g) return "";
  const s = g.script || {};
  const ra = g.recommended_action;
  const senti = g.sentiment && g.sentiment.label ? `<p class="senti">Customer mood: <b>${esc(g.sentiment.label)}</b>${g.sentiment.trend ? ` (${esc(g.sentiment.trend)})` : ""}</p>` : "";
  return `<section aria-labelledby="h-guide"><h3 id="h-guide">What to do</h3>
    <p class="summary">${esc(g.summary || "")}</p>${senti}
    ${ra ? `<p class="do-now"><b>${esc(URGENCY[ra.urgency] || "Do this")}:</b> ${esc(ACTION[ra.type] || ra.type)}. ${esc(ra.reason)}</p>` : ""}
    ${s.opening ? `<div class="script-head"><h3 id="h-script">What to say</h3>
        <button type="button" class="secondary small" id="copy-script" title="Copy (c)">Copy script</button></div>
      <div class="script" id="script-text"><p>${esc(s.opening)}</p><ul>${(s.key_points || []).map((k) => `<li>${esc(k)}</li>`).join("")}</ul><p>${esc(s.closing || "")}</p></div>` : ""}
    ${(g.what_not_to_do || []).length ? `<h3>Don't</h3><ul class="dont">${g.what_not_to_do.map((k) => `<li>${esc(k)}</li>`).join("")}</ul>` : ""}
    ${g.win_condition ? `<p><b>Win:</b> ${esc(g.win_condition)}</p>` : ""}
  </section>`;
}

function renderSteps(c, act) {
  const steps = (c.playbook && c.playbook.steps) || [];
  if (!steps.length) return "";
  const done = steps.filter((s) => s.state === "completed" || s.state === "skipped").length;
  const items = steps.map((s) => {
    const st = s.state === "completed" ? "done" : s.state === "skipped" ? "skipped" : "todo";
    const mark = st === "done" ? `<span class="mark" aria-hidden="true">✓</span>` : st === "skipped" ? `<span class="mark" aria-hidden="true">→</span>` : `<span class="mark" aria-hidden="true">○</span>`;
    const word = st === "done" ? "Done" : st === "skipped" ? "Skipped" : "To do";
    const controls = act && st === "todo" ? `<div class="step-actions">
        <button type="button" class="primary small step-done" data-step="${s.step}" title="Tick it (x ticks the next step)">✓ Done</button>
        <button type="button" class="secondary small step-skip" data-step="${s.step}">Skip…</button></div>
      <form class="step-skip-form" data-step="${s.step}" hidden>
        <label for="skip-step-${s.step}">Why skip step ${s.step}? (needed)</label>
        <input id="skip-step-${s.step}" maxlength="300" placeholder="e.g. the customer already did it">
        <p class="error" role="alert" hidden></p>
        <div class="row"><button type="button" class="secondary small skip-cancel">Cancel</button>
        <button type="submit" class="primary small">Skip step</button></div></form>` : "";
    return `<li class="step st-${st}" data-step="${s.step}" data-state="${st}">${mark}
      <div class="step-text"><span class="step-desc">${esc(s.description)}</span>
      <span class="step-state">${word}${s.minutes ? ` · about ${esc(s.minutes)} min` : ""}</span></div>${controls}</li>`;
  }).join("");
  return `<section aria-labelledby="h-steps"><h3 id="h-steps">Steps: ${esc(c.playbook.name || "")} <span class="count">${done} of ${steps.length} done</span></h3>
    <ol class="checklist">${items}</ol></section>`;
}

function renderMessages(awaiting, act) {
  if (!awaiting.length) return "";
  const items = awaiting.map((m) => `<li class="msg" data-id="${esc(m.id)}">
      <p class="msg-meta">To ${esc(m.audience)} by ${esc(m.channel.replace("_", " "))}${m.recipient ? ` (${esc(m.recipient)})` : ""} · ${esc(m.reason || "")}</p>
      ${m.subject ? `<p class="msg-subject">${esc(m.subject)}</p>` : ""}
      <pre class="msg-body" tabindex="0" aria-label="Message text">${esc(m.body || "")}</pre>
      ${act ? `<div class="row left">
        <button type="button" class="primary small msg-approve">✓ Approve and send</button>
        <button type="button" class="secondary small msg-edit">Edit…</button>
        <button type="button" class="secondary small msg-reject">Reject…</button></div>
      <form class="msg-edit-form" hidden>
        ${m.subject != null ? `<label for="subj-${esc(m.id)}">Subject</label><input id="subj-${esc(m.id)}" class="msg-subj" value="${esc(m.subject)}">` : ""}
        <label for="body-${esc(m.id)}">Message</label><textarea id="body-${esc(m.id)}" class="msg-text" rows="8">${esc(m.body || "")}</textarea>
        <p class="error" role="alert" hidden></p>
        <div class="row"><button type="button" class="secondary small edit-cancel">Cancel</button>
        <button type="submit" class="primary small">Save changes</button></div></form>
      <form class="msg-reject-form" hidden>
        <label for="rej-${esc(m.id)}">Why reject it? (needed)</label><input id="rej-${esc(m.id)}" class="rej-reason" maxlength="300">
        <p class="error" role="alert" hidden></p>
        <div class="row"><button type="button" class="secondary small reject-cancel">Cancel</button>
        <button type="submit" class="primary small">Reject message</button></div></form>` : ""}
    </li>`).join("");
  const who = act ? "" : `<p class="readonly">A lead or an admin approves, edits or rejects these.</p>`;
  return `<section aria-labelledby="h-msgs"><h3 id="h-msgs">Waiting for approval <span class="count">${awaiting.length}</span></h3>${who}<ul class="msgs">${items}</ul></section>`;
}

function renderResolve(c, act) {
  if (!act) return "";
  const radios = [1, 2, 3, 4, 5].map((n) => `<label class="csat-opt"><input type="radio" name="csat" value="${n}"> ${n}</label>`).join("");
  return `<section aria-labelledby="h-resolve"><h3 id="h-resolve">Resolve</h3>
    <form id="resolve-form" class="resolve">
      <label for="resolve-outcome">Outcome</label>
      <select id="resolve-outcome">${OUTCOMES.map(([v, w]) => `<option value="${v}">${esc(w)}</option>`).join("")}</select>
      <fieldset class="csat"><legend>CSAT, optional: 1 unhappy … 5 delighted</legend>${radios}</fieldset>
      <p class="error" role="alert" hidden></p>
      <button type="submit" class="primary" id="resolve-ok">Resolve case</button>
    </form></section>`;
}

function renderNotes(c) {
  if (!canNote(c)) return "";
  return `<section aria-labelledby="h-note"><h3 id="h-note">Add a note</h3>
    <form id="note-form" class="note">
      <label for="note-text" class="sr-only">Note</label>
      <textarea id="note-text" rows="2" maxlength="2000" placeholder="What happened, for the next person"></textarea>
      <p class="error" role="alert" hidden></p>
      <div class="row"><button type="submit" class="secondary small">Add note</button></div>
    </form></section>`;
}

const TIME = (at) => {
  const d = new Date(at);
  return isNaN(d) ? at : d.toISOString().slice(5, 16).replace("T", " ") + " UTC";
};

function describe(t) {
  const d = t.detail || {};
  const data = d.data || {};
  switch (t.kind) {
  case "event":
    switch (t.what) {
    case "case.note_added": return ["note", `Note by ${data.agent}: ${data.text}`];
    case "case.step_completed": return ["step", `Step ${data.step} done by ${data.agent}`];
    case "case.step_skipped": return ["step", `Step ${data.step} skipped by ${data.agent}${data.reason ? ": " + data.reason : ""}`];
    case "case.assigned": return ["case", `Assigned to ${data.agent}`];
    case "case.responded": return ["case", `${data.agent} contacted the customer (${data.channel || "?"})`];
    case "case.resolved": return ["case", `Resolved by ${data.agent}: ${data.outcome}${data.csat ? `, CSAT ${data.csat}` : ""}`];
    case "case.skipped": return ["case", `Skipped by ${data.agent}: ${data.reason}`];
    case "message.sent": return ["message", `Message sent by ${data.channel}`];
    case "ticket.created": return ["event", `Ticket ${data.ticket_id || ""} opened: ${data.subject || ""}`];
    case "customer.updated": return ["event", "Customer details updated"];
    default: return ["event", t.what.replace(/[._]/g, " ")];
    }
  case "case":
    if (t.what === "opened") return ["case", `Case opened (${d.severity})`];
    if (t.what === "escalated") return ["case", `Escalated: ${d.reason || d.escalation}`];
    if (t.what === "playbook_set") return ["case", `Playbook: ${d.name || d.playbook}`];
    return ["case", `Case ${t.what.replace(/_/g, " ")}${d.change ? ": " + d.change : ""}`];
  case "detection": return ["detection", `Detection ${t.what}: ${d.name || d.signal}`];
  case "message": return ["message", `Message to ${d.audience} by ${(d.channel || "").replace("_", " ")}: ${t.what.replace(/_/g, " ")}`];
  case "sla": return ["sla", `SLA ${(d.metric || "").replace(/_/g, " ")}: ${t.what}`];
  default: return ["event", `${t.kind} ${t.what}`];
  }
}

function renderTimeline(c) {
  const tl = (c.timeline || []).map((t, i) => [t, i]);
  tl.sort((a, b) => (a[0].at < b[0].at ? 1 : a[0].at > b[0].at ? -1 : a[1] - b[1]));
  const items = tl.map(([t]) => {
    const [kind, text] = describe(t);
    return `<li class="tl-${kind}"><time datetime="${esc(t.at)}">${esc(TIME(t.at))}</time> <span class="tl-kind">${esc(kind)}</span> ${esc(text)}</li>`;
  }).join("");
  return `<section aria-labelledby="h-tl"><h3 id="h-tl">Timeline, newest first</h3><ol class="timeline" tabindex="0" aria-labelledby="h-tl">${items}</ol></section>`;
}

// ---- wiring ----

async function change(method, path, body, done, errEl) {
  const r = await ctx.api(method, path, body);
  if (r.status === 200) { await draw(done); ctx.refresh(); return true; }
  const msg = (r.data && r.data.error) || `refused (${r.status})`;
  if (errEl) { errEl.textContent = msg; errEl.hidden = false; } else await draw("Not done: " + msg);
  return false;
}

function wire(c) {
  const body = $("case-body");
  const copy = $("copy-script");
  if (copy) copy.addEventListener("click", () => copyScript(copy));
  for (const b of body.querySelectorAll(".step-done"))
    b.addEventListener("click", () => change("POST", `/v1/cases/${c.id}/steps/${b.dataset.step}/complete`, undefined, `✓ Step ${b.dataset.step} done.`));
  for (const b of body.querySelectorAll(".step-skip"))
    b.addEventListener("click", () => {
      const f = body.querySelector(`.step-skip-form[data-step="${b.dataset.step}"]`);
      f.hidden = false; f.querySelector("input").focus();
    });
  for (const f of body.querySelectorAll(".step-skip-form")) {
    f.querySelector(".skip-cancel").addEventListener("click", () => { f.hidden = true; });
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      const reason = f.querySelector("input").value.trim();
      const err = f.querySelector(".error");
      if (!reason) { err.textContent = "Say why, so the next person knows."; err.hidden = false; f.querySelector("input").focus(); return; }
      change("POST", `/v1/cases/${c.id}/steps/${f.dataset.step}/skip`, { reason }, `Step ${f.dataset.step} skipped: ${reason}`, err);
    });
  }
  for (const li of body.querySelectorAll(".msg")) {
    const id = li.dataset.id;
    const ef = li.querySelector(".msg-edit-form"), rf = li.querySelector(".msg-reject-form");
    if (!ef) continue;
    li.querySelector(".msg-approve").addEventListener("click", () => change("POST", `/v1/messages/${id}/approve`, undefined, "✓ Message approved: it goes out now."));
    li.querySelector(".msg-edit").addEventListener("click", () => { ef.hidden = false; rf.hidden = true; ef.querySelector("textarea").focus(); });
    li.querySelector(".msg-reject").addEventListener("click", () => { rf.hidden = false; ef.hidden = true; rf.querySelector("input").focus(); });
    ef.querySelector(".edit-cancel").addEventListener("click", () => { ef.hidden = true; });
    rf.querySelector(".reject-cancel").addEventListener("click", () => { rf.hidden = true; });
    ef.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = ef.querySelector(".msg-text").value;
      const err = ef.querySelector(".error");
      if (!text.trim()) { err.textContent = "The message cannot be empty."; err.hidden = false; return; }
      const payload = { body: text };
      const subj = ef.querySelector(".msg-subj");
      if (subj) payload.subject = subj.value;
      change("POST", `/v1/messages/${id}/edit`, payload, "Message changed. Approve it to send it.", err);
    });
    rf.addEventListener("submit", (e) => {
      e.preventDefault();
      const reason = rf.querySelector("input").value.trim();
      const err = rf.querySelector(".error");
      if (!reason) { err.textContent = "Say why, so the next person knows."; err.hidden = false; return; }
      change("POST", `/v1/messages/${id}/reject`, { reason }, "Message rejected: it will not be sent.", err);
    });
  }
  const nf = $("note-form");
  if (nf) nf.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("note-text").value.trim();
    const err = nf.querySelector(".error");
    if (!text) { err.textContent = "Write the note first."; err.hidden = false; return; }
    change("POST", `/v1/cases/${c.id}/note`, { text }, "Note added.", err);
  });
  const rf = $("resolve-form");
  if (rf) rf.addEventListener("submit", (e) => {
    e.preventDefault();
    const outcome = $("resolve-outcome").value;
    const picked = rf.querySelector("input[name=csat]:checked");
    const payload = { outcome };
    if (picked) payload.csat = Number(picked.value);
    change("POST", `/v1/cases/${c.id}/resolve`, payload,
      `✓ Resolved: ${outcome.replace("_", " ")}${picked ? `, CSAT ${picked.value}` : ""}. Well done.`, rf.querySelector(".error"));
  });
}

async function copyScript(btn) {
  const text = $("script-text").innerText.trim();
  let ok = false;
  try { await navigator.clipboard.writeText(text); ok = true; } catch {
    const ta = document.createElement("textarea");
    ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
    $("case-dialog").append(ta); ta.select();
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    ta.remove();
  }
  btn.textContent = ok ? "✓ Copied" : "Select the text to copy";
  setTimeout(() => { btn.textContent = "Copy script"; }, 2000);
}

// Keys in the case view (see the help dialog): x ticks the next step to do,
// c copies the script, a approves the first message waiting (lead, admin),
// m writes a note, r goes to Resolve, u opens the customer's page.  Returns 1 when the key did something.
export function caseKey(key) {
  const body = $("case-body");
  const press = (sel) => { const el = body.querySelector(sel); if (!el) return 0; el.click(); return 1; };
  const focus = (sel) => { const el = body.querySelector(sel); if (!el) return 0; el.focus(); el.scrollIntoView({ block: "center" }); return 1; };
  switch (key) {
  case "x": return press(".step[data-state=todo] .step-done");
  case "c": return press("#copy-script");
  case "a": return press(".msg .msg-approve");
  case "m": return focus("#note-text");
  case "r": return focus("#resolve-outcome");
  case "u": return press(".cust-link");
  default: return 0;
  }
}

export const caseShown = () => current;
export const casePending = () => pending;
