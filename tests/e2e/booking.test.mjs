// Booking under a real wrangler dev: time zones from workerd's own ICU (Intl), DST-correct
// availability in New York and Berlin, and twenty parallel bookings of one slot.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, testSecrets, errorCode } from "./harness.mjs";

let w;
let admin;
let acme;

before(async () => {
  w = await startWorker({ vars: testSecrets() });
  admin = await w.login("admin@acme.test");
  acme = (await w.request("GET", "/api/me", { token: admin })).json.context.tenant;
});

after(async () => { await w?.stop(); });

const api = (method, path, json) => w.request(method, `/api/clients/${acme}${path}`, { token: admin, json });

/** Sets acme's zone and makes a 60-minute service and a staff member who works weekdays 09-17
 * and Sundays 00-06 (the hours every DST change falls in). */
async function setup(zone, name) {
  const z = await w.request("PUT", `/api/clients/${acme}`, { token: admin, json: { time_zone: zone } });
  assert.equal(z.status, 200, z.text);
  const service = await api("POST", "/services", { name: `${name} visit`, duration_min: 60, buffer_after_min: 15 });
  assert.equal(service.status, 201, service.text);
  const hours = [1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: "09:00", end: "17:00" }));
  hours.push({ weekday: 7, start: "00:00", end: "06:00" });
  const staff = await api("POST", "/staff", { name, service_ids: [service.json.id], hours });
  assert.equal(staff.status, 201, staff.text);
  return { service: service.json.id, staff: staff.json.id };
}

async function slots(s, day) {
  const r = await api("GET", `/availability?service=${s.service}&from=${day}&to=${day}&staff=${s.staff}`);
  assert.equal(r.status, 200, r.text);
  return r.json.staff[0].slots.map((x) => x.starts_at);
}

describe("time zones from the runtime", () => {
  test("an unknown zone is refused and a known one is stored by its canonical name", async () => {
    const bad = await w.request("PUT", `/api/clients/${acme}`, { token: admin, json: { time_zone: "Mars/Olympus" } });
    assert.equal(bad.status, 422);
    assert.equal(errorCode(bad), "invalid_time_zone");
    const ok = await w.request("PUT", `/api/clients/${acme}`, { token: admin, json: { time_zone: "europe/berlin" } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.time_zone, "Europe/Berlin");
  });

  test("New York: spring forward has no 02:00, fall back offers 01:00 once", async () => {
    const s = await setup("America/New_York", "Nia");
    assert.deepEqual(await slots(s, "2027-03-14"),
      ["2027-03-14T05:00:00Z", "2027-03-14T06:00:00Z", "2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z", "2027-03-14T09:00:00Z"]);
    assert.deepEqual(await slots(s, "2027-11-07"),
      ["2027-11-07T04:00:00Z", "2027-11-07T05:00:00Z", "2027-11-07T07:00:00Z", "2027-11-07T08:00:00Z", "2027-11-07T09:00:00Z", "2027-11-07T10:00:00Z"]);
    const r = await api("POST", "/appointments", { service_id: s.service, staff_id: s.staff, starts_at: "2027-03-14T07:00:00Z" });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.local_start, "2027-03-14T03:00");
    const row = w.d1(`SELECT starts_at, ends_at, blocked_until FROM appointments WHERE id = '${r.json.id}'`)[0];
    assert.equal(row.starts_at, Date.parse("2027-03-14T07:00:00Z"));
    assert.equal(row.blocked_until - row.ends_at, 15 * 60_000, "the buffer after");
  });

  test("Berlin: spring forward and fall back", async () => {
    const s = await setup("Europe/Berlin", "Bea");
    assert.deepEqual(await slots(s, "2027-03-28"),
      ["2027-03-27T23:00:00Z", "2027-03-28T00:00:00Z", "2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z", "2027-03-28T03:00:00Z"]);
    assert.deepEqual(await slots(s, "2027-10-31"),
      ["2027-10-30T22:00:00Z", "2027-10-30T23:00:00Z", "2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z", "2027-10-31T03:00:00Z", "2027-10-31T04:00:00Z"]);
  });
});

describe("no double booking, decided by the database", () => {
  test("twenty parallel bookings of one slot: exactly one 201, nineteen 409", async () => {
    const s = await setup("America/New_York", "Rae");
    // Wednesday 2027-06-09, 10:00 EDT.
    const starts_at = "2027-06-09T14:00:00Z";
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => api("POST", "/appointments", {
      service_id: s.service, staff_id: s.staff, starts_at, contact: { name: `Racer ${i}`, email: `racer${i}@example.com` },
    })));
    const statuses = rs.map((r) => r.status);
    assert.equal(statuses.filter((x) => x === 201).length, 1, statuses.join(","));
    assert.equal(statuses.filter((x) => x === 409).length, 19, statuses.join(","));
    assert.ok(rs.filter((r) => r.status === 409).every((r) => errorCode(r) === "slot_taken"));
    assert.equal(w.d1(`SELECT count(*) AS n FROM appointments WHERE staff_id = '${s.staff}' AND status = 'scheduled'`)[0].n, 1);
    assert.equal(w.d1("SELECT count(*) AS n FROM contacts WHERE email LIKE 'racer%@example.com'")[0].n, 1, "losers leave no contact");
    // The buffer keeps 11:00 closed; cancelling reopens 10:00.
    const later = await api("POST", "/appointments", { service_id: s.service, staff_id: s.staff, starts_at: "2027-06-09T15:00:00Z" });
    assert.equal(later.status, 409);
    const winner = rs.find((r) => r.status === 201);
    assert.equal((await api("PATCH", `/appointments/${winner.json.id}`, { status: "cancelled" })).status, 200);
    assert.ok((await slots(s, "2027-06-09")).includes(starts_at));
  });
});
