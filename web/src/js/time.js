// Times in a named IANA zone (the subject's), with the zone stated beside them.
const formats = new Map();

function formatter(tz) {
  if (!formats.has(tz)) {
    formats.set(tz, new Intl.DateTimeFormat("en-GB", { timeZone: tz, year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }));
  }
  return formats.get(tz);
}

function parts(date, tz) {
  const out = {};
  for (const p of formatter(tz).formatToParts(date)) out[p.type] = p.value;
  return out;
}

/** "2026-12-01 17:03:12" in ``tz``. */
export function formatIn(iso, tz) {
  if (!iso) return "—";
  const p = parts(new Date(iso), tz);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** The zone's offset from UTC at ``date``, in minutes. */
export function offsetMinutes(date, tz) {
  const p = parts(date, tz);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
}

export function zoneLabel(tz, date = new Date()) {
  const m = offsetMinutes(date, tz);
  const sign = m < 0 ? "−" : "+";
  const a = Math.abs(m);
  return `${tz} (UTC${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")})`;
}

/** A datetime-local value ("2026-12-01T17:00") read as a wall time in ``tz``, as RFC 3339 UTC. */
export function wallTimeToIso(value, tz) {
  if (!value) return null;
  const [d, time] = value.split("T");
  const [y, mo, da] = d.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const guess = Date.UTC(y, mo - 1, da, h, mi);
  let utc = guess - offsetMinutes(new Date(guess), tz) * 60000;
  utc = guess - offsetMinutes(new Date(utc), tz) * 60000;
  return new Date(utc).toISOString();
}

export function browserZone() { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; }
