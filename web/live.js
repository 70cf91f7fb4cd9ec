// forewarn console: live updates and the server's clock.
//
// One EventSource on GET /v1/stream (docs/console.md, "Live updates").  The
// server sends `change` (cases changed, messages stored), `clock` (the
// virtual clock moved), `reset` (it could not resume us: re-read
// everything) and `hello`; each carries the server's `now`.  The browser
// reconnects on its own and sends Last-Event-ID, so nothing in between is
// lost.  Only while the stream is down does a fallback re-read everything,
// every FALLBACK_MS; <html data-live> says which ("on" / "off") and
// data-fallback-reads counts the fallback's reads (the browser test checks
// it stays 0 while updates arrive).
//
// The server's clock: the last `now` heard (from the stream or an API
// answer), plus, on the wall clock only, the time since (performance.now);
// on the virtual clock time moves only when the server says so, and never
// backwards (an answer read before a clock event may arrive after it).

const FALLBACK_MS = 30000;
const root = document.documentElement;

let es = null, handler = null, fallback = null;
const clock = { base: 0, at: 0, kind: "wall" };

export function setServerNow(iso, kind) {
  const t = Date.parse(iso);
  if (isNaN(t)) return;
  if (kind) clock.kind = kind;
  if (clock.kind === "virtual" && t < clock.base) return;
  clock.base = t; clock.at = performance.now();
}

export function serverNow() {
  return clock.kind === "wall" ? clock.base + (performance.now() - clock.at) : clock.base;
}

function show(on) {
  root.dataset.live = on ? "on" : "off";
  const el = document.getElementById("live");
  if (!el) return;
  el.hidden = false;
  el.className = "live " + (on ? "on" : "off");
  el.querySelector(".live-word").textContent = on ? "Live" : "Reconnecting…";
  el.title = on ? "Updates arrive as they happen" : `Not connected: re-reading every ${FALLBACK_MS / 1000} s`;
}

function pulse() {
  const el = document.getElementById("live");
  if (!el) return;
  el.classList.remove("pulse"); void el.offsetWidth; el.classList.add("pulse");
}

function deliver(kind, e) {
  let data = {};
  try { data = JSON.parse(e.data); } catch { /* keep {} */ }
  if (data.now) setServerNow(data.now, data.clock);
  root.dataset.streamEvents = String(Number(root.dataset.streamEvents || 0) + 1);
  root.dataset.lastEventId = e.lastEventId || "";
  if (kind !== "hello") pulse();
  if (handler) handler(kind, data);
}

// Open the stream; onEvent(kind, data) for each event ("hello" after every (re)connect).
export function liveStart(onEvent) {
  liveStop();
  handler = onEvent;
  root.dataset.streamEvents = root.dataset.streamEvents || "0";
  root.dataset.fallbackReads = root.dataset.fallbackReads || "0";
  es = new EventSource("/v1/stream");
  es.addEventListener("open", () => show(true));
  es.addEventListener("error", () => {
    show(false);
    // Refused (401, 503): the browser gives up; try again at the fallback's pace.
    if (es && es.readyState === EventSource.CLOSED) setTimeout(() => { if (handler === onEvent) liveStart(onEvent); }, FALLBACK_MS);
  });
  for (const kind of ["hello", "change", "clock", "reset"])
    es.addEventListener(kind, (e) => deliver(kind, e));
  fallback = setInterval(() => {
    if (es && es.readyState === EventSource.OPEN) return;
    root.dataset.fallbackReads = String(Number(root.dataset.fallbackReads) + 1);
    if (handler) handler("reset", {});
  }, FALLBACK_MS);
}

export function liveStop() {
  if (es) es.close();
  es = null; handler = null;
  clearInterval(fallback); fallback = null;
  const el = document.getElementById("live");
  if (el) el.hidden = true;
}
