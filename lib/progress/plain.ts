// BuildKit's plain progress: one line per happening, prefixed with #N.
//   #5 [2/3] RUN make
//   #5 0.312 compiling...
//   #5 DONE 2.3s
// A vertex's header is repeated when its lines resume after another vertex's.
// Step names, statuses and errors (Dockerfile text, file names) have their control
// characters escaped; the steps' own output is printed as it came, as BuildKit's
// plain mode does (logs keep their colours; a terminal shows them as the command meant).
import type { ProgressEvent, Renderer } from './events';
import { formatBytes, formatSeconds } from './events';
import { escapeControls } from '../util/escape';
import { errorSummary, logOffset, ProgressModel, type LogLine, type VertexRow } from './model';

export class PlainRenderer implements Renderer {
  private readonly model: ProgressModel;
  private last: VertexRow | null = null;

  constructor(private readonly out: NodeJS.WritableStream = process.stderr, now = Date.now()) {
    this.model = new ProgressModel(now);
  }

  private header(row: VertexRow): void {
    if (this.last === row) return;
    if (this.last !== null) this.out.write('\n');
    this.out.write(`#${row.index} ${escapeControls(row.name, { oneLine: true })}\n`);
    this.last = row;
  }

  private line(row: VertexRow, text: string): void {
    this.header(row);
    this.out.write(`#${row.index} ${escapeControls(text, { oneLine: true })}\n`);
  }

  private logLine(row: VertexRow, line: LogLine): void {
    this.header(row);
    this.out.write(`#${row.index} ${logOffset(line.time - (row.started ?? line.time))} ${line.text}\n`);
  }

  write(ev: ProgressEvent): void {
    const lines = this.model.apply(ev);
    const row = this.model.get(ev.id);
    if (!row) return;
    switch (ev.type) {
      case 'vertex': {
        if (ev.state === 'started') {
          this.header(row);
          return;
        }
        const rest = this.model.flushPartial(row);
        if (rest !== null) this.logLine(row, rest);
        const dur = formatSeconds((row.completed ?? ev.time) - (row.started ?? ev.time));
        if (ev.state === 'completed') this.line(row, `DONE ${dur}`);
        else if (ev.state === 'cached') this.line(row, 'CACHED');
        else if (ev.state === 'canceled') this.line(row, `CANCELED`);
        else this.line(row, `ERROR: ${ev.error ?? 'failed'}`);
        return;
      }
      case 'log':
        for (const l of lines) this.logLine(row, l);
        return;
      case 'warning':
        this.line(row, `WARN: ${ev.short}`);
        return;
      case 'status': {
        if (ev.completed === undefined) return; // print each sub-step once, when done
        const s = row.statuses.find((x) => x.sub === ev.sub);
        const size =
          ev.total !== undefined
            ? ` ${formatBytes(ev.current ?? ev.total)} / ${formatBytes(ev.total)}`
            : ev.current !== undefined
              ? ` ${formatBytes(ev.current)}`
              : '';
        const dur = s ? ` ${formatSeconds(ev.completed - s.started)}` : '';
        this.line(row, `${ev.name}${size}${dur} done`);
        return;
      }
    }
  }

  async close(ok: boolean): Promise<void> {
    if (!ok) {
      const summary = errorSummary(this.model);
      if (summary) this.out.write('\n' + summary);
    }
  }
}
