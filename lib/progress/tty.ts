// BuildKit-like live view for a terminal:
//   [+] Building 4.2s (12/16)
//    => CACHED [1/3] FROM docker.io/library/busybox                0.0s
//    => [2/3] RUN make                                            1.2s
//    => => # cc -o app main.c
// Nothing printed may move the cursor out of the frame: names are escaped and the
// steps' output shown as a terminal would have left each line (util/escape.ts).
// Events only mark the view dirty; a timer redraws at most 10 times a second
// (durations of running steps tick), and close() draws the final frame.
import type { ProgressEvent, Renderer } from './events';
import { formatBytes, formatSeconds } from './events';
import { escapeControls, terminalLine } from '../util/escape';
import { errorSummary, ProgressModel, type VertexRow } from './model';

const FRAME_MS = 100; // ≤ 10 Hz
const LIVE_LOG_LINES = 6;

export interface TtyOutput extends NodeJS.WritableStream {
  columns?: number;
  rows?: number;
}

export class TtyRenderer implements Renderer {
  private readonly model: ProgressModel;
  private drawnLines = 0;
  private dirty = true;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  frames = 0; // frames drawn (tests check the rate bound)

  constructor(
    private readonly out: TtyOutput = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.model = new ProgressModel(now());
  }

  write(ev: ProgressEvent): void {
    if (this.closed) return;
    this.model.apply(ev);
    if (ev.type === 'vertex' && ev.state !== 'started') {
      const row = this.model.get(ev.id);
      if (row) this.model.flushPartial(row);
    }
    this.dirty = true;
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), FRAME_MS);
      this.timer.unref();
      // First frame right away so short builds show something.
      this.draw(false);
    }
  }

  private tick(): void {
    const running = this.model.vertices.some((v) => v.state === 'started');
    if (this.dirty || running) this.draw(false);
  }

  async close(ok: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.draw(true);
    if (!ok) {
      const summary = errorSummary(this.model);
      if (summary) this.out.write(summary);
    }
  }

  lines(final: boolean): string[] {
    const width = Math.max(40, this.out.columns || 80);
    const t = this.now();
    const { done, total } = this.model.counts();
    const elapsed = formatSeconds(t - this.model.startTime);
    const out = [`[+] Building ${elapsed} (${done}/${total})${final ? ' FINISHED' : ''}`];
    for (const v of this.model.vertices) {
      out.push(row(width, ` => ${prefix(v)}${v.name}`, duration(v, t)));
      for (const s of v.statuses) {
        const size =
          s.total !== undefined
            ? ` ${formatBytes(s.current ?? 0)} / ${formatBytes(s.total)}`
            : s.current !== undefined
              ? ` ${formatBytes(s.current)}`
              : '';
        const end = s.completed ?? (v.state === 'started' ? t : (v.completed ?? t));
        out.push(row(width, ` => => ${s.name}${size}`, formatSeconds(end - s.started)));
      }
      for (const w of v.warnings) out.push(clip(` => WARN: ${escapeControls(w, { oneLine: true })}`, width));
      if (v.state === 'started' && !final) {
        const tail = v.partial ? [...v.tail, v.partial] : v.tail;
        for (const l of tail.slice(-LIVE_LOG_LINES)) out.push(clip(` => => # ${terminalLine(l.text)}`, width));
      }
    }
    return out;
  }

  private draw(final: boolean): void {
    this.dirty = false;
    this.frames++;
    let lines = this.lines(final);
    const height = this.out.rows ?? 0;
    // The live frame must fit the screen or cursor-up cannot reach its top.
    if (!final && height > 2 && lines.length > height - 1) lines = [lines[0], ...lines.slice(lines.length - (height - 2))];
    let buf = '';
    if (this.drawnLines > 0) buf += `\x1b[${this.drawnLines}A\r\x1b[J`;
    buf += lines.map((l) => l + '\n').join('');
    this.out.write(buf);
    this.drawnLines = lines.length;
  }
}

function prefix(v: VertexRow): string {
  switch (v.state) {
    case 'cached':
      return 'CACHED ';
    case 'error':
      return 'ERROR ';
    case 'canceled':
      return 'CANCELED ';
    default:
      return '';
  }
}

function duration(v: VertexRow, now: number): string {
  const start = v.started ?? now;
  const end = v.state === 'started' ? now : (v.completed ?? now);
  return formatSeconds(end - start);
}

function clip(s: string, width: number): string {
  const clean = escapeControls(s, { oneLine: true });
  return clean.length > width ? clean.slice(0, width) : clean;
}

function row(width: number, left: string, right: string): string {
  const room = width - right.length - 1;
  const l = clip(left, Math.max(10, room));
  return l + ' '.repeat(Math.max(1, width - l.length - right.length)) + right;
}
