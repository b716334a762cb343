/**
 * The MySQL functions statistics queries reach for that SQLite lacks, as plain functions the
 * query process registers (`db.function`). All times are UTC; a DATETIME is the text
 * `YYYY-MM-DD HH:MM:SS` the tables carry, which SQLite's own `date()`/`strftime()` read too.
 */

type SqlValue = string | number | bigint | null | Buffer;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** A Date from a DATETIME/DATE text; null for anything else (MySQL gives NULL too). */
export function parseDateTime(v: SqlValue): Date | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec(v.trim());
  if (!m) return null;
  const ms = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  const t = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4] ?? 0),
    Number(m[5] ?? 0),
    Number(m[6] ?? 0),
    ms,
  );
  return Number.isNaN(t) ? null : new Date(t);
}

export function formatDateTime(d: Date): string {
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** MySQL DATE_FORMAT specifiers (the common ones; an unknown `%x` is `x`, as in MySQL). */
export function formatWith(d: Date, fmt: string): string {
  let out = '';
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i] as string;
    if (ch !== '%' || i + 1 >= fmt.length) {
      out += ch;
      continue;
    }
    const s = fmt[++i] as string;
    const h = d.getUTCHours();
    switch (s) {
      case 'Y':
        out += pad(d.getUTCFullYear(), 4);
        break;
      case 'y':
        out += pad(d.getUTCFullYear() % 100);
        break;
      case 'm':
        out += pad(d.getUTCMonth() + 1);
        break;
      case 'c':
        out += String(d.getUTCMonth() + 1);
        break;
      case 'd':
        out += pad(d.getUTCDate());
        break;
      case 'e':
        out += String(d.getUTCDate());
        break;
      case 'H':
        out += pad(h);
        break;
      case 'k':
        out += String(h);
        break;
      case 'h':
      case 'I':
        out += pad(h % 12 === 0 ? 12 : h % 12);
        break;
      case 'l':
        out += String(h % 12 === 0 ? 12 : h % 12);
        break;
      case 'i':
        out += pad(d.getUTCMinutes());
        break;
      case 's':
      case 'S':
        out += pad(d.getUTCSeconds());
        break;
      case 'f':
        out += pad(d.getUTCMilliseconds() * 1000, 6);
        break;
      case 'p':
        out += h < 12 ? 'AM' : 'PM';
        break;
      case 'T':
        out += `${pad(h)}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
        break;
      case 'W':
        out += DAYS[d.getUTCDay()];
        break;
      case 'a':
        out += (DAYS[d.getUTCDay()] as string).slice(0, 3);
        break;
      case 'w':
        out += String(d.getUTCDay());
        break;
      case 'M':
        out += MONTHS[d.getUTCMonth()];
        break;
      case 'b':
        out += (MONTHS[d.getUTCMonth()] as string).slice(0, 3);
        break;
      case 'j': {
        const start = Date.UTC(d.getUTCFullYear(), 0, 1);
        out += pad(Math.floor((d.getTime() - start) / 86_400_000) + 1, 3);
        break;
      }
      default:
        out += s;
    }
  }
  return out;
}

function toNumber(v: SqlValue): number | null {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return null;
}

/** FROM_UNIXTIME(seconds [, format]). */
export function fromUnixtime(sec: SqlValue, fmt?: SqlValue): string | null {
  const n = toNumber(sec);
  if (n === null || n < 0) return null;
  const d = new Date(Math.floor(n * 1000));
  if (Number.isNaN(d.getTime())) return null;
  return typeof fmt === 'string' ? formatWith(d, fmt) : formatDateTime(d);
}

/** UNIX_TIMESTAMP([datetime]). */
export function unixTimestamp(now: number, v?: SqlValue): number | null {
  if (v === undefined) return Math.floor(now / 1000);
  const d = parseDateTime(v);
  return d ? Math.floor(d.getTime() / 1000) : null;
}

export function dateFormat(v: SqlValue, fmt: SqlValue): string | null {
  const d = parseDateTime(v);
  return d && typeof fmt === 'string' ? formatWith(d, fmt) : null;
}

/** HOUR(), MINUTE(), DAY(), MONTH(), YEAR() of a DATETIME text. */
export function part(
  which: 'hour' | 'minute' | 'second' | 'day' | 'month' | 'year',
  v: SqlValue,
): number | null {
  const d = parseDateTime(v);
  if (!d) return null;
  switch (which) {
    case 'hour':
      return d.getUTCHours();
    case 'minute':
      return d.getUTCMinutes();
    case 'second':
      return d.getUTCSeconds();
    case 'day':
      return d.getUTCDate();
    case 'month':
      return d.getUTCMonth() + 1;
    case 'year':
      return d.getUTCFullYear();
  }
}
