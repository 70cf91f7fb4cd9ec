// console.test.mjs -- the console in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core; both installed by
// scripts/install-deps), against a real `forewarn serve --virtual-clock`
// loaded with `forewarn demo`.  Run by tests/e2e/test_console.py (so it is
// part of `make test`), or alone:
//
//   FOREWARN_BIN=$PWD/build/forewarn node tests/browser/console.test.mjs
//
// Prints "ok   name" / "FAIL name" and "N passed, N failed"; exits 1 on a
// failure.  Screenshots (desktop 1280x800, phone 390x844) go to
// $FOREWARN_SCREENSHOTS (default build/screenshots).  Nothing waits on a
// fixed sleep: every wait is for a condition, with a deadline.
import { spawn, execFileSync } from "node:child_process";
import http_ from "node:http";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const PW = process.env.PLAYWRIGHT_CORE || "/usr/local/share/forewarn/node_modules/playwright-core";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const BIN = process.env.FOREWARN_BIN || path.resolve("build/forewarn");
const SHOTS = process.env.FOREWARN_SCREENSHOTS || path.resolve("build/screenshots");
const NOW = "2026-12-07T12:00:00Z";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const AXE = process.env.AXE_CORE || path.join(path.dirname(PW), "axe-core", "axe.min.js");

const { chromium } = require(PW);
const AXE_SRC = fs.readFileSync(AXE, "utf8");

function assert(cond, msg) { if (!cond) throw new Error("assertion failed: " + msg); }
function eq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}
const fw = (...args) => execFileSync(BIN, args, { encoding: "utf8" }).trim();

// ---- a local receiver shaped like Zendesk's Tickets API (ticket, internal
// note, public reply), so an approved reply is seen arriving, word for word ----

const received = [];   // {method, path, json}
const arrivals = [];   // waiters: {match, resolve}
const zendesk = http_.createServer((rq, rs) => {
  let body = "";
  rq.on("data", (c) => { body += c; });
  rq.on("end", () => {
    let json = null; try { json = JSON.parse(body); } catch { /* not JSON */ }
    const rec = { method: rq.method, path: rq.url, json };
    received.push(rec);
    for (const w of arrivals.splice(0)) if (w.match(rec)) w.resolve(rec); else arrivals.push(w);
    const ok = rq.method === "POST" && rq.url === "/api/v2/tickets.json";
    rs.writeHead(ok ? 201 : 200, { "Content-Type": "application/json" });
    rs.end(JSON.stringify({ ticket: { id: ok ? 1000 + received.length : 1 } }));
  });
});
await new Promise((r) => zendesk.listen(0, "127.0.0.1", r));
// A request the receiver got (or gets, before the deadline) that matches.
function arrival(match, ms = 15000) {
  const seen = received.find(match);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const w = { match, resolve };
    arrivals.push(w);
    setTimeout(() => { const i = arrivals.indexOf(w); if (i >= 0) { arrivals.splice(i, 1); reject(new Error("the receiver got no such request in " + ms + " ms")); } }, ms);
  });
}

// ---- the server ----

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fw-console-"));
const config = path.join(dir, "forewarn.yaml");
fs.writeFileSync(config, `connectors:
  zendesk:
    base_url: http://127.0.0.1:${zendesk.address().port}
    email: agent@example.com
    api_token: zendesk-token
`);
const db = path.join(dir, "fw.db");
const ready = path.join(dir, "ready");
const log = fs.openSync(path.join(dir, "server.log"), "a");
const server = spawn(BIN, ["serve", "--config", config, "--db", db, "--listen", "127.0.0.1:0", "--ready-file", ready,
  "--virtual-clock"], { stdio: ["ignore", log, log] });
let base;
{
  const deadline = Date.now() + 30000;
  while (!fs.existsSync(ready) || !fs.readFileSync(ready, "utf8").trim()) {
    if (server.exitCode !== null) throw new Error("server exited " + server.exitCode);
    if (Date.now() > deadline) throw new Error("server did not become ready");
    await new Promise((r) => setTimeout(r, 20));
  }
  base = "http://" + fs.readFileSync(ready, "utf8").trim();
}

async function http(method, p, body, headers = {}) {
  const r = await fetch(base + p, {
    method, headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null; try { data = JSON.parse(text); } catch { data = text; }
  return { status: r.status, data, headers: r.headers };
}

const demo = path.join(dir, "demo.ndjson");
fw("demo", "--now", NOW, "--out", demo);
fw("ingest", "--backfill", demo, "--url", base, "--batch", "500");
eq((await http("POST", "/v1/admin/clock", { now: NOW })).status, 200, "clock");

// ---- the browser ----

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
fs.mkdirSync(SHOTS, { recursive: true });
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: false });

async function newPage(viewport = DESKTOP) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  const offsite = [];
  page.on("request", (rq) => { if (!rq.url().startsWith(base)) offsite.push(rq.url()); });
  page.on("pageerror", (e) => { throw e; });
  // A style or script the page's Content-Security-Policy blocks is a bug: it
  // works nowhere the header is sent.
  const csp = [];
  page.on("console", (m) => { if (m.type() === "error" && /Content Security Policy/.test(m.text())) csp.push(m.text()); });
  page.offsite = offsite;
  page.csp = csp;
  return page;
}

// axe-core, evaluated through the debugging protocol (the page's CSP would
// refuse an injected script tag), then run on the whole document: any
// serious or critical violation fails the test, with the rule and the nodes.
async function axeScan(page, screen) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE_SRC);
  const bad = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ rule: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + ": " + n.failureSummary) }));
  });
  eq(bad, [], `axe-core serious/critical violations on the ${screen}`);
  eq(page.csp, [], `CSP violations on the ${screen}`);
}

async function signIn(page, token) {
  await page.goto(base + "/");
  await page.locator("#token").waitFor();
  await page.fill("#token", token);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#cards .card").first().waitFor();
}

const cardNames = (page) => page.$$eval("#cards .card .name", (els) => els.map((e) => e.textContent.trim()));

// ---- the tests, in order (time only moves forward) ----

const tests = [];
const test = (name, fn) => tests.push([name, fn]);
let agentTok, viewerTok, adminTok, agentPage;
const admin = () => ({ Authorization: "Bearer " + adminTok });

test("without users the console opens as admin, no sign-in, nothing leaves the machine", async () => {
  const page = await newPage();
  await page.goto(base + "/");
  await page.locator("#cards .card").first().waitFor();
  const who = await page.textContent("#who");
  assert(who.includes("no sign-in configured"), who);
  eq(page.offsite, [], "requests to other hosts");
  await page.context().close();
});

test("static assets carry a content-hash ETag and revalidate (304); the API stays no-store", async () => {
  const a = await http("GET", "/app.js");
  eq(a.status, 200, "app.js");
  assert(a.headers.get("content-type").startsWith("text/javascript"), a.headers.get("content-type"));
  const etag = a.headers.get("etag");
  assert(/^"[0-9a-f]{16}"$/.test(etag), "etag " + etag);
  assert(a.headers.get("cache-control") === "no-cache", a.headers.get("cache-control"));
  eq((await http("GET", "/app.js", undefined, { "If-None-Match": etag })).status, 304, "revalidation");
  eq((await http("GET", "/v1/queue")).headers.get("cache-control"), "no-store", "API cache-control");
});

test("users exist: the console asks for a token; a wrong one is refused in words", async () => {
  agentTok = fw("user", "add", "ann", "--role", "agent", "--db", db);
  viewerTok = fw("user", "add", "vic", "--role", "viewer", "--db", db);
  adminTok = fw("user", "add", "ada", "--role", "admin", "--db", db);
  for (const [vp, tag] of [[DESKTOP, "desktop"], [PHONE, "phone"]]) {
    const page = await newPage(vp);
    await page.goto(base + "/");
    await page.locator("#token").waitFor();
    await shot(page, `signin-${tag}`);
    await axeScan(page, `sign-in screen (${tag})`);
    if (tag === "desktop") {
      await page.fill("#token", "fw_" + "x".repeat(43));
      await page.click("#signin-form button[type=submit]");
      await page.locator("#signin-error:not([hidden])").waitFor();
      assert((await page.textContent("#signin-error")).includes("did not work"), "error text");
    }
    await page.context().close();
  }
});

test("an agent signs in with a token: HttpOnly SameSite=Strict session cookie", async () => {
  agentPage = await newPage();
  await signIn(agentPage, agentTok);
  const cookies = await agentPage.context().cookies();
  const c = cookies.find((x) => x.name === "fw_session");
  assert(c && c.httpOnly && c.sameSite === "Strict" && c.path === "/", JSON.stringify(cookies));
  assert(!c.value.includes(agentTok), "the cookie is not the token");
  eq(await agentPage.textContent("#who"), "ann · agent", "who");
});

test("the queue shows the four live cases, the counts per severity and the server's order", async () => {
  const q = (await http("GET", "/v1/queue", undefined, admin())).data;
  eq(q.cases.length, 4, "live cases");
  eq(await cardNames(agentPage), q.cases.map((c) => c.name), "order");
  const tabs = await agentPage.$$eval("#tabs .tab", (els) => els.map((e) => e.textContent.replace(/\s+/g, " ").trim()));
  eq(tabs, ["☰ ALL (4)", "✖ CRITICAL (1)", "▲ HIGH (3)", "◆ MEDIUM (0)", "● LOW (0)"], "tabs");
  const first = agentPage.locator("#cards .card").first();
  assert((await first.getAttribute("class")).includes("sev-CRITICAL"), "first is critical");
  assert((await first.locator(".time").textContent()).includes("breached"), "first is breached");
  eq(agentPage.offsite, [], "requests to other hosts");
  await shot(agentPage, "queue-desktop");
  await axeScan(agentPage, "queue");
  const phone = await newPage(PHONE);
  await signIn(phone, agentTok);
  await shot(phone, "queue-phone");
  await phone.locator("body").press("?");
  await phone.locator("#help-dialog[open]").waitFor();
  await shot(phone, "help-phone");
  await phone.context().close();
});

test("12-year-old test: the top case's name, time left and primary action are the largest text in the top third", async () => {
  const r = await agentPage.evaluate(() => {
    const third = window.innerHeight / 3;
    const first = document.querySelector("#cards .card");
    const key = [first.querySelector(".name"), first.querySelector(".time .left"), first.querySelector(".act-primary")];
    const size = (el) => parseFloat(getComputedStyle(el).fontSize);
    const out = { key: key.map((el) => el && { text: el.textContent.trim(), top: el.getBoundingClientRect().top,
      bottom: el.getBoundingClientRect().bottom, size: size(el) }), others: [] };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n; (n = walker.nextNode());) {
      const el = n.parentElement;
      if (!n.textContent.trim() || !el || el.closest("[hidden], dialog")) continue;
      const rect = el.getBoundingClientRect();
      if (!rect.width || rect.top >= third) continue;
      if (key.some((k) => k && k.contains(el))) continue;
      out.others.push({ text: n.textContent.trim().slice(0, 40), size: size(el) });
    }
    out.third = third;
    return out;
  });
  for (const k of r.key) {
    assert(k, "name, time left and primary action all present");
    assert(k.bottom <= r.third, `"${k.text}" ends at ${k.bottom}px, below the top third (${r.third}px)`);
  }
  const smallest = Math.min(...r.key.map((k) => k.size));
  const bigger = r.others.filter((o) => o.size >= smallest);
  eq(bigger, [], `text as large as the key items (${smallest}px) in the top third`);
});

test("a countdown turns amber at the warning and red with 'breached … ago' on the virtual clock", async () => {
  const q = (await http("GET", "/v1/queue", undefined, admin())).data;
  const c = q.cases.find((x) => !x.tightest.breached);
  assert(c, "a case still inside its SLA");
  const due = Date.parse(c.tightest.due);
  const time = agentPage.locator(`#cards .card[data-id="${c.id}"] .time`);
  eq(await time.getAttribute("data-state"), "ok", "before the warning");
  const iso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
  eq((await http("POST", "/v1/admin/clock", { now: iso(due - q.warn_before_ms + 60000) }, admin())).status, 200, "clock");
  await agentPage.waitForFunction((id) => document.querySelector(`.card[data-id="${id}"] .time`)?.dataset.state === "warn",
    c.id, { timeout: 10000 });
  const amber = await time.locator(".left").evaluate((e) => getComputedStyle(e).color);
  eq(amber, "rgb(138, 75, 0)", "amber");
  assert((await time.textContent()).includes("29m left"), await time.textContent());
  eq((await http("POST", "/v1/admin/clock", { now: iso(due + 12 * 60000) }, admin())).status, 200, "clock");
  await agentPage.waitForFunction((id) => document.querySelector(`.card[data-id="${id}"] .time`)?.dataset.state === "breached",
    c.id, { timeout: 10000 });
  assert((await time.textContent()).includes("breached 12m ago"), await time.textContent());
  eq(await time.locator(".left").evaluate((e) => getComputedStyle(e).color), "rgb(179, 20, 27)", "red");
});

// Live updates (GET /v1/stream): what another person does through the API
// shows on the open page without a reload, and it came by the stream: the
// page's fallback re-read (only while the stream is down, every 30 s)
// never ran, and the stream's event count moved.
const live = (page) => page.evaluate(() => ({ live: document.documentElement.dataset.live,
  events: Number(document.documentElement.dataset.streamEvents || 0),
  fallback: Number(document.documentElement.dataset.fallbackReads || 0) }));
function noReload(page) {
  const navs = [];
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navs.push(f.url()); });
  return navs;
}
let bob;

test("live: another agent takes a case and gives it back; the open queue drops it and gets it back without a reload", async () => {
  bob = { Authorization: "Bearer " + fw("user", "add", "bob", "--role", "agent", "--db", db) };
  const navs = noReload(agentPage);
  const before = await live(agentPage);
  eq(before.live, "on", "the stream is open");
  const c = (await http("GET", "/v1/queue", undefined, admin())).data.cases.find((x) => !x.assignee);
  eq((await http("POST", `/v1/cases/${c.id}/assign`, {}, bob)).status, 200, "bob takes it");
  // An agent's queue holds their own cases and the unassigned ones: bob's leaves it.
  await agentPage.locator(`.card[data-id="${c.id}"]`).waitFor({ state: "detached", timeout: 5000 });
  eq((await http("POST", `/v1/cases/${c.id}/skip`, { reason: "wrong language" }, bob)).status, 200, "bob gives it back");
  await agentPage.waitForFunction((id) => document.querySelector(`.card[data-id="${id}"] .meta`)?.textContent.includes("nobody has it yet"),
    c.id, { timeout: 5000 });
  const after = await live(agentPage);
  assert(after.events >= before.events + 2, `stream events ${before.events} -> ${after.events}`);
  eq(after.fallback, 0, "fallback re-reads");
  eq(navs, [], "navigations (reloads)");
});

test("guided mode: 'n' takes the next case and it becomes the agent's", async () => {
  await agentPage.locator("body").press("n");
  await agentPage.waitForFunction(() => document.querySelector("#status").textContent.startsWith("Your case now"));
  const q = (await http("GET", "/v1/queue", undefined, admin())).data;
  const mine = q.cases.filter((c) => c.assignee === "ann");
  eq(mine.length, 1, "cases assigned to ann");
  await agentPage.waitForFunction((id) => document.querySelector(`.card[data-id="${id}"] .meta`)?.textContent.includes("yours"), mine[0].id);
});

test("skipping asks for a reason and is not sent without one", async () => {
  const q = (await http("GET", "/v1/queue", undefined, admin())).data;
  const id = q.cases.find((c) => c.assignee === "ann").id;
  await agentPage.click(`.card[data-id="${id}"] .act-skip`);
  await agentPage.locator("#skip-dialog[open]").waitFor();
  await agentPage.click("#skip-ok");
  assert(await agentPage.locator("#skip-dialog[open]").isVisible(), "dialog stays open without a reason");
  eq((await http("GET", "/v1/queue", undefined, admin())).data.cases.find((c) => c.id === id).assignee, "ann", "still ann's");
  await agentPage.fill("#skip-reason", "needs a Spanish speaker");
  await agentPage.click("#skip-ok");
  await agentPage.locator("#skip-dialog[open]").waitFor({ state: "detached" });
  eq((await http("GET", "/v1/queue", undefined, admin())).data.cases.find((c) => c.id === id).assignee, null, "back to the queue");
});

test("a cookie change without the CSRF header is refused 403; with it, it goes through", async () => {
  const id = (await http("GET", "/v1/queue", undefined, admin())).data.cases.find((c) => !c.assignee).id;
  const r = await agentPage.evaluate(async (id) => {
    const plain = await fetch(`/v1/cases/${id}/note`, { method: "POST", body: JSON.stringify({ text: "x" }) });
    const me = await (await fetch("/v1/session")).json();
    const good = await fetch(`/v1/cases/${id}/note`, { method: "POST", body: JSON.stringify({ text: "x" }),
      headers: { "X-Forewarn-CSRF": me.csrf } });
    const wrong = await fetch(`/v1/cases/${id}/note`, { method: "POST", body: JSON.stringify({ text: "x" }),
      headers: { "X-Forewarn-CSRF": "fw_" + "y".repeat(43) } });
    return [plain.status, good.status, wrong.status];
  }, id);
  eq(r, [403, 200, 403], "no header, the session's value, a wrong value");
});

test("a viewer sees the queue but none of the agent's buttons", async () => {
  const page = await newPage();
  await signIn(page, viewerTok);
  eq(await page.locator(".act-primary, .act-skip").count(), 0, "action buttons");
  assert(!(await page.locator("#next").isVisible()), "Next case hidden");
  assert((await page.locator(".readonly").first().textContent()).includes("View only"), "says why");
  await shot(page, "queue-viewer-desktop");
  await page.context().close();
});

test("the case opens with Enter: summary, script, checklist and timeline", async () => {
  const selected = () => agentPage.$eval("#cards .card.selected", (el) => [el.dataset.id, document.activeElement === el]);
  const ids = await agentPage.$$eval("#cards .card", (els) => els.map((e) => e.dataset.id));
  await agentPage.locator("body").press("j");
  eq(await selected(), [ids[1], true], "j selects and focuses the second card");
  await agentPage.locator("body").press("k");
  eq(await selected(), [ids[0], true], "k goes back to the first");
  await agentPage.keyboard.press("Enter");
  await agentPage.locator("#case-dialog[open] .case-view .checklist").waitFor();
  const text = await agentPage.textContent("#case-body");
  assert(text.includes("What to say") && text.includes("Steps") && text.includes("Timeline"), text.slice(0, 200));
  assert(await agentPage.locator("#copy-script").isVisible(), "a copy button for the script");
  await axeScan(agentPage, "case view");
  await agentPage.keyboard.press("Escape");
  await agentPage.locator("#case-dialog[open]").waitFor({ state: "detached" });
});

// The case the next tests work: unassigned (an agent may work it), with a
// message awaiting approval when there is one.
let workId;
const caseOf = async (id) => (await http("GET", `/v1/cases/${id}`, undefined, admin())).data;
const stepState = async (id, n) => (await caseOf(id)).playbook.steps.find((s) => s.step === n).state;
async function openCaseIn(page, id) {
  await page.click(`.card[data-id="${id}"] .open`);
  await page.locator("#case-dialog[open] .case-view .checklist").waitFor();
}

test("tick a playbook step: it shows done, and is still done after a reload", async () => {
  const q = (await http("GET", "/v1/queue", undefined, admin())).data;
  let best = null;
  for (const c of q.cases.filter((x) => !x.assignee)) {
    const full = await caseOf(c.id);
    const waiting = [];
    for (const m of full.messages) {
      const msg = (await http("GET", `/v1/messages/${m}`, undefined, admin())).data;
      if (msg.status === "awaiting_approval") waiting.push(m);
    }
    if (!best || waiting.length > best.waiting.length) best = { id: c.id, waiting };
  }
  assert(best, "an unassigned case");
  workId = best.id;
  await openCaseIn(agentPage, workId);
  const n = Number(await agentPage.locator(`.step[data-state="todo"]`).first().getAttribute("data-step"));
  await agentPage.click(`.step[data-step="${n}"] .step-done`);
  await agentPage.locator(`.step[data-step="${n}"][data-state="done"]`).waitFor();
  eq(await stepState(workId, n), "completed", "step state on the server");
  await agentPage.reload();
  await agentPage.locator("#cards .card").first().waitFor();
  await openCaseIn(agentPage, workId);
  eq(await agentPage.locator(`.step[data-step="${n}"]`).getAttribute("data-state"), "done", "done after a reload");
  assert((await agentPage.textContent(".timeline")).includes(`Step ${n} done by ann`), "the timeline says so");
  await shot(agentPage, "case-desktop");
  const phone = await newPage(PHONE);
  await signIn(phone, agentTok);
  await openCaseIn(phone, workId);
  await shot(phone, "case-phone");
  await phone.context().close();
});

test("keyboard: ? shows every shortcut, Esc closes it; in the case view x ticks the next step", async () => {
  await agentPage.keyboard.press("?");
  await agentPage.locator("#help-dialog[open]").waitFor();
  const help = await agentPage.textContent("#help-dialog");
  for (const k of ["j", "k", "Enter", "p", "s", "n", "x", "c", "a", "m", "r", "Esc"])
    assert(help.includes(k), `the help names ${k}`);
  await shot(agentPage, "help-desktop");
  await axeScan(agentPage, "keyboard help");
  await agentPage.keyboard.press("Escape");
  await agentPage.locator("#help-dialog[open]").waitFor({ state: "detached" });
  assert(await agentPage.locator("#case-dialog[open]").isVisible(), "the case view stays open under it");
  const n = Number(await agentPage.locator(`.step[data-state="todo"]`).first().getAttribute("data-step"));
  await agentPage.locator("#case-body h2").click(); // focus in the dialog, on no control
  await agentPage.keyboard.press("x");
  await agentPage.locator(`.step[data-step="${n}"][data-state="done"]`).waitFor();
  eq(await stepState(workId, n), "completed", "the step x ticked, on the server");
  await agentPage.keyboard.press("m");
  eq(await agentPage.evaluate(() => document.activeElement.id), "note-text", "m goes to the note");
  await agentPage.keyboard.type("typed j k x here");
  eq(await stepState(workId, n + 1), "pending", "keys typed in a field are text, not shortcuts");
});

test("skipping a step asks for a reason and sends nothing without one", async () => {
  const n = Number(await agentPage.locator(`.step[data-state="todo"]`).first().getAttribute("data-step"));
  const form = agentPage.locator(`.step-skip-form[data-step="${n}"]`);
  await agentPage.click(`.step[data-step="${n}"] .step-skip`);
  await form.locator("button[type=submit]").click();
  await form.locator(".error:not([hidden])").waitFor();
  eq(await stepState(workId, n), "pending", "not skipped without a reason");
  await form.locator("input").fill("the customer already did it");
  await form.locator("button[type=submit]").click();
  await agentPage.locator(`.step[data-step="${n}"][data-state="skipped"]`).waitFor();
  eq(await stepState(workId, n), "skipped", "skipped on the server");
});

test("a note goes to the timeline", async () => {
  await agentPage.fill("#note-text", "Left a voicemail, calling back at 3pm");
  await agentPage.click("#note-form button[type=submit]");
  await agentPage.waitForFunction(() => document.querySelector(".timeline")?.textContent.includes("Note by ann: Left a voicemail"));
});

test("live: a note another agent adds appears in the open case view", async () => {
  const navs = noReload(agentPage);
  eq((await http("POST", `/v1/cases/${workId}/note`, { text: "Bob here: she called back, all good" }, bob)).status, 200, "bob's note");
  await agentPage.waitForFunction(() => document.querySelector(".timeline")?.textContent.includes("Note by bob: Bob here"),
    undefined, { timeout: 5000 });
  eq((await live(agentPage)).fallback, 0, "fallback re-reads");
  eq(navs, [], "navigations (reloads)");
});

test("a message awaiting approval: an agent reads it; a lead edits it, then approves it", async () => {
  const msg = agentPage.locator(".msg").first();
  if (!(await msg.count())) { console.log("  (no message awaits approval on this case)"); return; }
  const id = await msg.getAttribute("data-id");
  eq(await msg.locator(".msg-approve, .msg-edit, .msg-reject").count(), 0, "an agent's message controls");
  const lead = await newPage();
  await signIn(lead, fw("user", "add", "lee", "--role", "lead", "--db", db));
  await openCaseIn(lead, workId);
  const m = lead.locator(`.msg[data-id="${id}"]`);
  await m.locator(".msg-edit").click();
  const text = "Hi, we fixed the transfer of your number this morning. Call me on 555-0100 if anything is off.";
  await m.locator(".msg-text").fill(text);
  await m.locator(".msg-edit-form button[type=submit]").click();
  await lead.waitForFunction(() => document.querySelector(".case-flash")?.textContent.includes("Message changed"));
  eq((await http("GET", `/v1/messages/${id}`, undefined, admin())).data.body, text, "edited body");
  await lead.click(`.msg[data-id="${id}"] .msg-approve`);
  await lead.locator(`.msg[data-id="${id}"]`).waitFor({ state: "detached" });
  const after = (await http("GET", `/v1/messages/${id}`, undefined, admin())).data;
  assert(after.status !== "awaiting_approval" && after.status !== "rejected", "approved: " + after.status);
  // Delivered: the local receiver got the edited words, not the template's.
  const want = (await http("GET", `/v1/messages/${id}`, undefined, admin())).data;
  if (want.channel === "ticket_reply" || want.channel === "internal_note") {
    const got = await arrival((rec) => rec.method === "PUT" && rec.json?.ticket?.comment?.body?.includes(text));
    eq(got.json.ticket.comment.public, want.channel === "ticket_reply", "a public reply");
  } else {
    throw new Error("the demo's waiting message is on " + want.channel + ": the test's receiver speaks Zendesk only");
  }
  await lead.waitForFunction(async (id) => (await (await fetch(`/v1/messages/${id}`)).json()).status === "sent", id, { timeout: 15000, polling: 200 });
  await axeScan(lead, "case view (lead)");
  await lead.context().close();
});

test("resolve with CSAT: the dashboard's resolved count and the leaderboard move", async () => {
  const before = (await http("GET", "/v1/stats/outcomes", undefined, admin())).data.team.cases_resolved;
  const board0 = (await http("GET", "/v1/leaderboard", undefined, admin())).data.leaderboard;
  eq(board0.filter((r) => r.agent === "ann").length, 0, "ann on the board before");
  await agentPage.selectOption("#resolve-outcome", "saved");
  await agentPage.check('input[name=csat][value="5"]');
  await agentPage.click("#resolve-ok");
  await agentPage.locator(".resolved-note").waitFor();
  const c = await caseOf(workId);
  eq([c.state, c.outcome, c.csat, c.resolved_by], ["resolved", "saved", 5, "ann"], "the case on the server");
  await agentPage.keyboard.press("Escape");
  await agentPage.click("#to-dashboard");
  await agentPage.waitForFunction((n) => document.querySelector('[data-figure="resolved"] .tile-value')?.textContent.trim() === String(n),
    before + 1, { timeout: 10000 });
  const row = agentPage.locator('#dash-board tr[data-agent="ann"]');
  await row.waitFor();
  assert((await row.textContent()).includes("(you)"), "my row is marked");
  eq((await agentPage.textContent('[data-figure="my-resolved"] .tile-value')).trim(), "1", "my resolved count");
  assert((await agentPage.textContent("#dash-me")).includes("First save"), "the first_save achievement");
  assert(await agentPage.locator("#dash-chart svg rect").count() > 0, "the chart is drawn");
  // This week against last week, and the weekly resolution chart, as the API counts them
  // for the same periods, ending at the server's clock.
  const now = Date.parse((await http("GET", "/v1/admin/clock", undefined, admin())).data.now);
  const W = 7 * 24 * 3600 * 1000, iso = (ms) => new Date(ms).toISOString();
  const team = async (f, t) => (await http("GET", `/v1/stats/outcomes?from=${iso(f)}&to=${iso(t)}`, undefined, admin())).data.team;
  const [cur, prev] = [await team(now - W, now), await team(now - 2 * W, now - W)];
  await agentPage.waitForFunction((n) => document.querySelector('[data-figure="week-resolved"] .tile-value')?.textContent.trim() === String(n),
    cur.cases_resolved, { timeout: 5000 });
  const wk = await agentPage.textContent('[data-figure="week-resolved"]');
  assert(wk.includes(`the week before (${prev.cases_resolved})`), wk);
  const word = cur.cases_resolved > prev.cases_resolved ? "more" : cur.cases_resolved < prev.cases_resolved ? "fewer" : "same";
  assert(wk.includes(word), `${word} in ${wk}`);
  if (cur.resolution_ms.n && prev.resolution_ms.n && cur.resolution_ms.median !== prev.resolution_ms.median) {
    const faster = cur.resolution_ms.median < prev.resolution_ms.median;
    const med = await agentPage.textContent('[data-figure="week-median"] .trend');
    assert(med.includes(faster ? "better" : "worse"), `a ${faster ? "faster" : "slower"} median is ${faster ? "better" : "worse"}: ${med}`);
  }
  const weeks = [];
  for (let i = 7; i >= 0; i--) weeks.push(await team(now - (i + 1) * W, now - i * W));
  const withData = weeks.filter((t) => t.resolution_ms && t.resolution_ms.n);
  eq(await agentPage.locator("#dash-restime svg circle").count(), withData.length, "one point per week with resolutions");
  const desc = await agentPage.textContent("#res-desc");
  for (const t of withData) assert(desc.includes(`median of ${t.resolution_ms.n}`), `the chart's text names n=${t.resolution_ms.n}: ${desc}`);
  await shot(agentPage, "dashboard-desktop");
  await axeScan(agentPage, "dashboard");
  const phone = await newPage(PHONE);
  await signIn(phone, agentTok);
  await phone.click("#to-dashboard");
  await phone.locator('#dash-board tr[data-agent="ann"]').waitFor();
  await phone.screenshot({ path: path.join(SHOTS, "dashboard-phone.png"), fullPage: true });
  await axeScan(phone, "dashboard (phone)");
  await phone.context().close();
  // Live: a lead resolves another case through the API; the open dashboard counts it.
  const navs = noReload(agentPage);
  const other = (await http("GET", "/v1/queue", undefined, admin())).data.cases.find((x) => x.id !== workId);
  eq((await http("POST", `/v1/cases/${other.id}/resolve`, { outcome: "resolved" }, admin())).status, 200, "resolve");
  await agentPage.waitForFunction((n) => document.querySelector('[data-figure="resolved"] .tile-value')?.textContent.trim() === String(n),
    before + 2, { timeout: 5000 });
  eq((await live(agentPage)).fallback, 0, "fallback re-reads");
  eq(navs, [], "navigations (reloads)");
  await agentPage.click("#to-queue");
  await agentPage.locator("#cards .card").first().waitFor();
});

test("live: new events open cases that appear in the open queue; the incidents page shows who and what they share", async () => {
  const navs = noReload(agentPage);
  const clock = (await http("GET", "/v1/admin/clock", undefined, admin())).data.now;
  const at = (min) => new Date(Date.parse(clock) + min * 60000).toISOString().replace(".000Z", "Z");
  const people = [["Ivy Okafor", "ivy"], ["Raj Patel", "raj"], ["Lena Berg", "lena"]];
  const evs = [];
  people.forEach(([name, key], i) => {
    const subject = `${key}.outage@example.com`;
    evs.push({ specversion: "1.0", id: `live-cu-${key}`, type: "customer.updated", source: "test", subject, time: at(1 + i),
      data: { name, email: subject, carrier: "AT&T", zip: "99501", tier: "gold", value: 1800 } });
    evs.push({ specversion: "1.0", id: `live-esim-${key}`, type: "esim.status_changed", source: "test", subject, time: at(5 + i),
      data: { status: "ERROR" } });
  });
  const r = await http("POST", "/v1/events", evs, admin());
  eq(r.status, 200, "events accepted: " + JSON.stringify(r.data));
  eq((await http("POST", "/v1/admin/clock", { now: at(20) }, admin())).status, 200, "clock past the merge window");
  for (const [name] of people)
    await agentPage.waitForFunction((n) => [...document.querySelectorAll("#cards .card .name")].some((e) => e.textContent.trim() === n),
      name, { timeout: 5000 });
  eq((await live(agentPage)).fallback, 0, "fallback re-reads");
  eq(navs, [], "navigations (reloads)");

  const incs = (await http("GET", "/v1/incidents", undefined, admin())).data.incidents;
  const inc = incs.find((i) => i.state === "open" && i.customers.includes("ivy.outage@example.com"));
  assert(inc && inc.customers.length === 3 && inc.common_factor, "an incident with a factor: " + JSON.stringify(incs));
  await agentPage.locator("body").press("i");
  const card = agentPage.locator(`.incident[data-id="${inc.id}"]`);
  await card.waitFor();
  eq((await card.locator(".big-n").textContent()).trim(), "3", "affected customers");
  const factor = await card.locator(".factor").textContent();
  const pct = (x) => Math.round(x * 100) + "%";
  for (const want of [inc.common_factor.key, inc.common_factor.value, pct(inc.common_factor.share), pct(inc.common_factor.baseline)])
    assert(factor.includes(want), `the factor says ${want}: ${factor}`);
  eq(await card.locator(".who-list a").count(), 3, "links to the customers");
  await shot(agentPage, "incidents-desktop");
  await axeScan(agentPage, "incidents");
  const phone = await newPage(PHONE);
  await signIn(phone, agentTok);
  await phone.locator("#to-incidents").click();
  await phone.locator(`.incident[data-id="${inc.id}"]`).waitFor();
  await phone.screenshot({ path: path.join(SHOTS, "incidents-phone.png"), fullPage: true });
  await phone.context().close();
  await card.locator(".who-list a", { hasText: "Raj Patel" }).click();
  await agentPage.locator("#customer-title").waitFor();
  eq(await agentPage.textContent("#customer-title"), "Raj Patel", "the customer page from the incident");
  await agentPage.locator("body").press("q");
  await agentPage.locator("#cards .card").first().waitFor();
});

test("the customer page, from the case view: journey, detections, cases, messages and the mood's trend", async () => {
  const q = (await http("GET", "/v1/queue", undefined, admin())).data;
  let pick = null;
  for (const c of q.cases) {
    const g = await http("GET", `/v1/cases/${c.id}/guidance`, undefined, admin());
    if (g.status === 200 && g.data.sentiment && (g.data.sentiment.scores || []).length >= 2) { pick = { c, s: g.data.sentiment }; break; }
  }
  assert(pick, "an open case whose customer has written at least twice");
  const { c, s: senti } = pick;
  await agentPage.click(`.card[data-id="${c.id}"] .open`);
  await agentPage.locator("#case-dialog[open] .cust-link").waitFor();
  await agentPage.locator("#case-body h2").click();
  await agentPage.keyboard.press("u");
  await agentPage.locator("#customer-title").waitFor();
  assert(!(await agentPage.locator("#case-dialog[open]").count()), "the case view closed");
  eq(await agentPage.textContent("#customer-title"), c.name, "name");
  const enc = encodeURIComponent(c.customer);
  const cases = (await http("GET", `/v1/cases?customer=${enc}&limit=200`, undefined, admin())).data.cases;
  const dets = (await http("GET", `/v1/detections?customer=${enc}&limit=1000`, undefined, admin())).data.detections;
  const msgs = (await http("GET", `/v1/messages?customer=${enc}&limit=1000`, undefined, admin())).data.messages;
  const count = async (h) => (await agentPage.textContent(`#${h} .count`)).trim();
  eq(await count("h-ccases"), String(cases.length), "cases counted");
  eq(await count("h-cdets"), `${dets.length}, ${dets.filter((d) => d.state === "firing").length} firing`, "detections counted");
  eq(await count("h-cmsgs"), `${msgs.length}, ${msgs.filter((m) => m.status === "sent").length} sent`, "messages counted");
  eq(await agentPage.locator(".spark circle").count(), senti.scores.length, "one point per scored text");
  assert((await agentPage.textContent(".mood")).includes(senti.direction), "the direction in words");
  await shot(agentPage, "customer-desktop");
  await axeScan(agentPage, "customer page");
  const phone = await newPage(PHONE);
  await signIn(phone, agentTok);
  await phone.goto(base + "/#/customer/" + enc);
  await phone.locator("#customer-title").waitFor();
  await phone.screenshot({ path: path.join(SHOTS, "customer-phone.png"), fullPage: true });
  await phone.context().close();
  // A case on the customer page opens the case view.
  await agentPage.locator(".open-case").first().click();
  await agentPage.locator("#case-dialog[open] .case-view").waitFor();
  await agentPage.keyboard.press("Escape");
  await agentPage.locator("body").press("q");
  await agentPage.locator("#cards .card").first().waitFor();
});

test("a viewer reads the case view but has no control on it", async () => {
  const page = await newPage();
  await signIn(page, viewerTok);
  await page.locator("#cards .card .open").first().click();
  await page.locator("#case-dialog[open] .case-view .checklist").waitFor();
  eq(await page.locator(".step-done, .step-skip, .msg-approve, .msg-edit, .msg-reject, #resolve-form, #note-form").count(), 0,
    "controls a viewer sees");
  assert((await page.textContent("#case-body .readonly")).includes("View only"), "says why");
  await axeScan(page, "case view (viewer)");
  await page.context().close();
});

test("sign out: the session is gone and the sign-in form is back", async () => {
  await agentPage.click("#signout");
  await agentPage.locator("#signin:not([hidden])").waitFor();
  eq(await agentPage.evaluate(async () => (await fetch("/v1/session")).status), 401, "session after sign-out");
  await agentPage.context().close();
});

let passed = 0, failed = 0;
for (const [name, fn] of tests) {
  try {
    await fn();
    passed++;
    console.log("ok   " + name);
  } catch (e) {
    failed++;
    console.log("FAIL " + name + "\n" + (e.stack || e));
  }
}
await browser.close();
zendesk.close();
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
if (failed) console.log("server log: " + path.join(dir, "server.log"));
else fs.rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
