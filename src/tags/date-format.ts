/**
 * moment.js date formatting, the subset metadata-action's `{{date}}` / `{{commit_date}}` are used
 * with, in any IANA time zone (through Intl, so no time zone database to ship).
 */
import { TemplateError } from './template.js';

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const TOKENS = /\[[^\]]*\]|YYYY|YY|Q|MMMM|MMM|MM|M|DDDD|DDD|DD|Do|D|dddd|ddd|dd|d|HH|H|hh|h|kk|k|mm|m|ss|s|SSS|SS|S|A|a|ZZ|Z|X|x/g;

interface Wall {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number; // 0 = Sunday
  offsetMinutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws TemplateError when tz is not an IANA time zone name the runtime knows. */
export function checkTimeZone(tz: string): void {
  wallClock(new Date(0), tz);
}

function wallClock(d: Date, tz: string): Wall {
  let f = formatters.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new TemplateError(`unknown time zone tz='${tz}' (use an IANA name such as UTC, Europe/Paris or Asia/Tokyo)`);
    }
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(d).map((p) => [p.type, p.value]));
  const year = Number(parts.year);
  const month = Number(parts.month);
  const day = Number(parts.day);
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  const second = Number(parts.second);
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const offsetMinutes = Math.round((asUtc - Math.floor(d.getTime() / 1000) * 1000) / 60000);
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return { year, month, day, hour, minute, second, weekday, offsetMinutes };
}

const pad = (n: number, w: number) => String(Math.abs(n)).padStart(w, '0');

function ordinal(n: number): string {
  const t = n % 100;
  if (t >= 11 && t <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

/**
 * What moment.js prints when given no format: ISO 8601 to the second, `Z` for UTC (any zone at
 * offset 0, as moment's isUtc) and `+hh:mm` elsewhere.
 */
export function formatDateDefault(d: Date, tz = 'UTC'): string {
  return formatDate(d, wallClock(d, tz).offsetMinutes === 0 ? 'YYYY-MM-DDTHH:mm:ss[Z]' : 'YYYY-MM-DDTHH:mm:ssZ', tz);
}

/**
 * Formats a date with moment.js tokens (the subset: YYYY YY Q MMMM MMM MM M DDDD DDD DD Do D dddd
 * ddd dd d HH H hh h kk k mm m ss s SSS SS S A a ZZ Z X x, and [literal] text); any other
 * character is copied as is. `tz` is an IANA zone, UTC by default.
 */
export function formatDate(d: Date, format: string, tz = 'UTC'): string {
  const w = wallClock(d, tz);
  const ms = ((d.getTime() % 1000) + 1000) % 1000;
  const h12 = w.hour % 12 || 12;
  const dayOfYear = Math.round((Date.UTC(w.year, w.month - 1, w.day) - Date.UTC(w.year, 0, 1)) / 86400000) + 1;
  const off = (sep: string) =>
    `${w.offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(w.offsetMinutes) / 60), 2)}${sep}${pad(Math.abs(w.offsetMinutes) % 60, 2)}`;
  return format.replace(TOKENS, (t) => {
    switch (t) {
      case 'YYYY':
        return pad(w.year, 4);
      case 'YY':
        return pad(w.year % 100, 2);
      case 'Q':
        return String(Math.ceil(w.month / 3));
      case 'MMMM':
        return MONTHS[w.month - 1]!;
      case 'MMM':
        return MONTHS[w.month - 1]!.slice(0, 3);
      case 'MM':
        return pad(w.month, 2);
      case 'M':
        return String(w.month);
      case 'DDDD':
        return pad(dayOfYear, 3);
      case 'DDD':
        return String(dayOfYear);
      case 'DD':
        return pad(w.day, 2);
      case 'Do':
        return ordinal(w.day);
      case 'D':
        return String(w.day);
      case 'dddd':
        return DAYS[w.weekday]!;
      case 'ddd':
        return DAYS[w.weekday]!.slice(0, 3);
      case 'dd':
        return DAYS[w.weekday]!.slice(0, 2);
      case 'd':
        return String(w.weekday);
      case 'HH':
        return pad(w.hour, 2);
      case 'H':
        return String(w.hour);
      case 'hh':
        return pad(h12, 2);
      case 'h':
        return String(h12);
      case 'kk':
        return pad(w.hour || 24, 2);
      case 'k':
        return String(w.hour || 24);
      case 'mm':
        return pad(w.minute, 2);
      case 'm':
        return String(w.minute);
      case 'ss':
        return pad(w.second, 2);
      case 's':
        return String(w.second);
      case 'SSS':
        return pad(ms, 3);
      case 'SS':
        return pad(Math.floor(ms / 10), 2);
      case 'S':
        return String(Math.floor(ms / 100));
      case 'A':
        return w.hour < 12 ? 'AM' : 'PM';
      case 'a':
        return w.hour < 12 ? 'am' : 'pm';
      case 'ZZ':
        return off('');
      case 'Z':
        return off(':');
      case 'X':
        return String(Math.floor(d.getTime() / 1000));
      case 'x':
        return String(d.getTime());
      default:
        return t.slice(1, -1); // [literal]
    }
  });
}
