// Human-readable sizes and durations as docker/go-units prints them, and a
// tab-aligned table writer with Go text/tabwriter's layout (img ls, du, …).

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];
const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

// Go's "%.4g" (or another precision): at most that many significant digits, no trailing zeros.
function g(n: number, precision = 4): string {
  return String(Number(n.toPrecision(precision)));
}

function customSize(size: number, base: number, units: string[], precision = 4): string {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return `${g(size, precision)}${units[i]}`;
}

// go-units BytesSize: binary units, "1.534KiB", "591B".
export function bytesSize(size: number): string {
  return customSize(size, 1024, BINARY);
}

// go-units HumanSize: decimal units, "1.57kB", "9.927MB"; HumanSizeWithPrecision with
// `precision` (docker history's SIZE uses 3: "1.23MB").
export function humanSize(size: number, precision = 4): string {
  return customSize(size, 1000, DECIMAL, precision);
}

// Go's time.Unix(seconds, 0).Format(time.RFC3339) in the local zone: "2024-01-01T00:00:00Z"
// in UTC, "2024-01-01T01:00:00+01:00" elsewhere.
export function rfc3339(seconds: number): string {
  const d = new Date(seconds * 1000);
  const offset = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 19);
  if (offset === 0) return `${local}Z`;
  const abs = Math.abs(offset);
  return `${local}${offset > 0 ? '+' : '-'}${String(Math.trunc(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

// go-units HumanDuration: "Less than a second", "9 seconds", "About a minute", "30 minutes", …
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3600000 / 24 / 365)} years`;
}

// "9 seconds ago" for a timestamp, as img ls prints CREATED AT / UPDATED AT.
export function timeAgo(iso: string | Date, now: number = Date.now()): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : iso.getTime();
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

// Parses "512", "10k", "1.5MiB", "2g" (docker's RAMInBytes: binary multiples) → bytes, or null.
export function parseBytes(input: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(input);
  if (!m) return null;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2].toLowerCase() as '' | 'k'];
  return Math.round(Number(m[1]) * mult);
}

// Go's time.ParseDuration for the forms settings use: "30s", "1m30s", "500ms", "1.5h";
// a bare number is seconds. null for anything else (or a negative duration).
export function parseDuration(input: string): number | null {
  const s = input.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) return null;
    total += Number(m[1]) * unit[m[2]];
    rest = rest.slice(m[0].length);
  }
  return s ? total : null;
}

// The other way, short: 500 → "500ms", 2000 → "2s", 90000 → "1m30s".
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const secs = Math.round(ms / 100) / 10;
  if (secs < 60) return `${secs}s`;
  const m = Math.floor(secs / 60);
  const rest = Math.round(secs - m * 60);
  return rest ? `${m}m${rest}s` : `${m}m`;
}

export interface TabwriterOptions {
  minwidth?: number;
  tabwidth?: number;
  padding?: number;
  padchar?: string; // '\t' pads with tabs (cells rounded up to tabwidth), like img's ls
}

// Go text/tabwriter for rows of cells: every cell but a row's last is a
// column cell; a column's width is its widest cell + padding (≥ minwidth),
// computed per block of consecutive rows that have that column.
// img uses tabwriter.NewWriter(os.Stdout, 1, 8, 1, '\t', 0) → the defaults here.
export function tabwrite(rows: string[][], opts: TabwriterOptions = {}): string {
  const minwidth = opts.minwidth ?? 1;
  const tabwidth = opts.tabwidth ?? 8;
  const padding = opts.padding ?? 1;
  const padchar = opts.padchar ?? '\t';
  const width = (s: string) => [...s].length;
  const widths: number[][] = rows.map((r) => new Array(Math.max(0, r.length - 1)).fill(0));
  const format = (col: number, start: number, end: number): void => {
    let i = start;
    while (i < end) {
      if (rows[i].length - 1 <= col) {
        i++;
        continue;
      }
      const blockStart = i;
      let w = minwidth;
      while (i < end && rows[i].length - 1 > col) {
        w = Math.max(w, width(rows[i][col]) + padding);
        i++;
      }
      for (let j = blockStart; j < i; j++) widths[j][col] = w;
      format(col + 1, blockStart, i);
    }
  };
  format(0, 0, rows.length);
  const lines = rows.map((r, ri) => {
    let line = '';
    for (let c = 0; c < r.length; c++) {
      const text = r[c];
      line += text;
      if (c === r.length - 1) break;
      const textw = width(text);
      if (padchar === '\t') {
        const cellw = Math.ceil(widths[ri][c] / tabwidth) * tabwidth;
        line += '\t'.repeat(Math.ceil((cellw - textw) / tabwidth));
      } else {
        line += padchar.repeat(widths[ri][c] - textw);
      }
    }
    return line;
  });
  return lines.map((l) => `${l}\n`).join('');
}
