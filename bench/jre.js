// jre.js -- the json-rules-engine baseline: SIG-001..SIG-010 as
// json-rules-engine rules, evaluated on every event of the same NDJSON
// stream forewarn replays.
//
// json-rules-engine has no customer state and no clock, so this keeps the
// state forewarn keeps (latest status per namespace, last time per event
// type, contact times, open tickets, the outage's zips) in a Map, turns it
// into facts at the event's time, and runs the engine for that customer on
// every event.  Time-based signals are therefore only noticed when the
// customer's next event arrives (there are no wake-ups); the agreement check
// does not depend on that: at each snapshot instant it evaluates every
// customer at that instant and writes the matching customers per signal,
// which bench/run compares with forewarn's detections active at that instant.
//
//   node bench/jre.js EVENTS.ndjson SNAPSHOT_MS[,SNAPSHOT_MS] OUT.json
//
// Prints one JSON line: events, wall and CPU seconds of the event loop
// (snapshot sweeps excluded), events/s, transitions seen.
'use strict';
const fs = require('fs');
const readline = require('readline');
const path = require('path');
const { Engine } = require(path.join(__dirname, 'node_modules', 'json-rules-engine'));

const H = 3600e3, D = 24 * H;

const rules = [
  ['SIG-001', { all: [
    { fact: 'esimStatus', operator: 'equal', value: 'PENDING' },
    { fact: 'paid', operator: 'equal', value: true },
    { fact: 'activated', operator: 'equal', value: false },
    { fact: 'msSincePayment', operator: 'greaterThan', value: 48 * H }] }],
  ['SIG-002', { all: [
    { fact: 'esimStatus', operator: 'in', value: ['ERROR', 'FAILED'] },
    { any: [
      { fact: 'hasOrder', operator: 'equal', value: false },
      { fact: 'msSinceOrder', operator: 'lessThan', value: 7 * D }] }] }],
  ['SIG-003', { all: [
    { fact: 'hasOrder', operator: 'equal', value: true },
    { fact: 'paidForOrder', operator: 'equal', value: false },
    { fact: 'msSinceOrder', operator: 'greaterThan', value: 2 * H }] }],
  ['SIG-004', { any: [
    { fact: 'portinResponse', operator: 'matches', value: 'FAILED|REJECTED' },
    { fact: 'portinStatus', operator: 'in', value: ['FAILED', 'REJECTED'] }] }],
  ['SIG-005', { all: [
    { fact: 'portinStatus', operator: 'equal', value: 'SUBMITTED' },
    { fact: 'msSincePortinChange', operator: 'greaterThan', value: 72 * H }] }],
  ['SIG-006', { all: [
    { fact: 'hasOrder', operator: 'equal', value: true },
    { fact: 'msSinceOrder', operator: 'greaterThan', value: 24 * H },
    { fact: 'orderCompleted', operator: 'equal', value: false }] }],
  ['SIG-007', { all: [
    { fact: 'escalated', operator: 'equal', value: true },
    { fact: 'msSinceEscalation', operator: 'greaterThan', value: 2 * H },
    { fact: 'ticketSinceEscalation', operator: 'equal', value: false }] }],
  ['SIG-008', { all: [
    { fact: 'contacts7d', operator: 'greaterThanInclusive', value: 3 }] }],
  ['SIG-009', { all: [
    { fact: 'paid', operator: 'equal', value: true },
    { fact: 'activated', operator: 'equal', value: false },
    { fact: 'msSincePayment', operator: 'greaterThanInclusive', value: 7 * D },
    { fact: 'contacts7d', operator: 'equal', value: 0 }] }],
  ['SIG-010', { all: [
    { fact: 'inOutageZip', operator: 'equal', value: true },
    { any: [
      { fact: 'openTickets', operator: 'greaterThan', value: 0 },
      { fact: 'msSinceChat', operator: 'lessThan', value: 24 * H }] }] }],
];

const engine = new Engine([], { allowUndefinedFacts: true });
engine.addOperator('matches', (a, b) => typeof a === 'string' && new RegExp(b).test(a));
for (const [id, conditions] of rules)
  engine.addRule({ name: id, conditions, event: { type: id } });

const customers = new Map();
let outageZips = null;

function state(subject) {
  let c = customers.get(subject);
  if (!c) {
    c = { zip: null, esim: null, orderAt: null, orderStatus: null, payAt: null, actAt: null,
          portinStatus: null, portinResponse: null, portinSince: null, chatAt: null,
          escAt: null, ticketAt: null, contacts: [], open: new Set(), firing: new Set() };
    customers.set(subject, c);
  }
  return c;
}

function apply(ev, t) {
  if (ev.type === 'outage.started') { outageZips = new Set(ev.data.zips || []); return null; }
  if (ev.type === 'outage.resolved') { outageZips = null; return null; }
  const c = state(ev.subject), d = ev.data || {};
  switch (ev.type) {
    case 'customer.updated': if ('zip' in d) c.zip = d.zip; break;
    case 'order.created': c.orderAt = t; c.orderStatus = null; break;
    case 'order.status_changed': c.orderStatus = d.status ? d.status.toUpperCase() : null; break;
    case 'payment.completed': c.payAt = t; break;
    case 'esim.status_changed': c.esim = d.status ? d.status.toUpperCase() : null; break;
    case 'activation.completed': c.actAt = t; break;
    case 'portin.status_changed': {
      const s = d.status ? d.status.toUpperCase() : null;
      if (s !== c.portinStatus) c.portinSince = t;
      c.portinStatus = s;
      c.portinResponse = d.response ? d.response.toUpperCase() : null;
      break;
    }
    case 'chat.started': c.chatAt = t; c.contacts.push(t); break;
    case 'chat.escalated': c.escAt = t; break;
    case 'ticket.created': c.ticketAt = t; c.contacts.push(t); c.open.add(d.ticket_id); break;
    case 'ticket.resolved': c.open.delete(d.ticket_id); break;
  }
  return c;
}

function facts(c, now) {
  while (c.contacts.length && c.contacts[0] <= now - 7 * D) c.contacts.shift();
  let n7 = 0;
  for (const t of c.contacts) if (t > now - 7 * D && t <= now) n7++;
  return {
    esimStatus: c.esim,
    hasOrder: c.orderAt !== null,
    msSinceOrder: c.orderAt === null ? null : now - c.orderAt,
    orderCompleted: c.orderStatus === 'COMPLETED',
    paid: c.payAt !== null,
    paidForOrder: c.payAt !== null && !(c.orderAt !== null && c.payAt < c.orderAt),
    msSincePayment: c.payAt === null ? null : now - c.payAt,
    activated: c.actAt !== null,
    portinStatus: c.portinStatus,
    portinResponse: c.portinResponse,
    msSincePortinChange: c.portinSince === null ? null : now - c.portinSince,
    escalated: c.escAt !== null,
    msSinceEscalation: c.escAt === null ? null : now - c.escAt,
    ticketSinceEscalation: c.ticketAt !== null && c.escAt !== null && c.ticketAt >= c.escAt,
    contacts7d: n7,
    inOutageZip: outageZips !== null && c.zip !== null && outageZips.has(c.zip),
    openTickets: c.open.size,
    msSinceChat: c.chatAt === null ? null : now - c.chatAt,
  };
}

async function main() {
  const [file, snapArg, outPath] = process.argv.slice(2);
  const snaps = snapArg.split(',').map(Number).sort((a, b) => a - b);
  const matches = {};
  let events = 0, transitions = 0, sweepWall = 0n, sweepCpu = 0;
  const rl = readline.createInterface({ input: fs.createReadStream(file, { highWaterMark: 1 << 20 }),
                                        crlfDelay: Infinity });
  async function sweep(at) {
    const w0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    const m = {};
    for (const [id] of rules) m[id] = [];
    for (const [subject, c] of customers) {
      const r = await engine.run(facts(c, at));
      for (const e of r.events) m[e.type].push(subject);
    }
    matches[String(at)] = m;
    const c1 = process.cpuUsage(c0);
    sweepCpu += (c1.user + c1.system) / 1e6;
    sweepWall += process.hrtime.bigint() - w0;
  }
  const w0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  for await (const line of rl) {
    if (!line) continue;
    const ev = JSON.parse(line);
    const t = Date.parse(ev.time);
    while (snaps.length && t > snaps[0]) await sweep(snaps.shift());
    const c = apply(ev, t);
    events++;
    if (!c) continue; // global events: the next sweep or event reads them
    const r = await engine.run(facts(c, t));
    const now = new Set(r.events.map((e) => e.type));
    for (const s of now) if (!c.firing.has(s)) transitions++;
    for (const s of c.firing) if (!now.has(s)) transitions++;
    c.firing = now;
  }
  while (snaps.length) await sweep(snaps.shift());
  const c1 = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - w0 - sweepWall) / 1e9;
  const cpu = (c1.user + c1.system) / 1e6 - sweepCpu;
  fs.writeFileSync(outPath, JSON.stringify(matches));
  console.log(JSON.stringify({ events, customers: customers.size, wall_s: wall, cpu_s: cpu,
    events_per_s: events / wall, cpu_events_per_s: events / cpu, transitions,
    json_rules_engine: require(path.join(__dirname, 'node_modules', 'json-rules-engine', 'package.json')).version,
    node: process.version }));
}

main().catch((e) => { console.error(e); process.exit(1); });
