// The state both human renderers draw from: vertices in order of first
// appearance, their statuses and a bounded tail of their output.
import { escapeControls, terminalLine } from '../util/escape';
import type { ProgressEvent, VertexState } from './events';

const TAIL_LINES = 10;

export interface StatusRow {
  sub: string;
  name: string;
  current?: number;
  total?: number;
  started: number;
  completed?: number;
}

export interface VertexRow {
  id: string;
  index: number; // 1-based, BuildKit's #N
  name: string;
  state: VertexState;
  started?: number;
  completed?: number;
  error?: string;
  statuses: StatusRow[];
  tail: LogLine[]; // last complete lines of output, in the order written
  partial: LogLine | null; // incomplete last line
  warnings: string[]; // the short texts of its warnings (build checks)
}

export interface LogLine {
  time: number; // when its first byte arrived
  text: string;
}

export class ProgressModel {
  readonly vertices: VertexRow[] = [];
  private readonly byId = new Map<string, VertexRow>();
  readonly startTime: number;

  constructor(now: number = Date.now()) {
    this.startTime = now;
  }

  row(id: string, name = id, time = Date.now()): { row: VertexRow; created: boolean } {
    let row = this.byId.get(id);
    if (row) return { row, created: false };
    row = { id, index: this.vertices.length + 1, name, state: 'started', started: time, statuses: [], tail: [], partial: null, warnings: [] };
    this.byId.set(id, row);
    this.vertices.push(row);
    return { row, created: true };
  }

  get(id: string): VertexRow | undefined {
    return this.byId.get(id);
  }

  // Applies an event; returns the complete lines a log event produced (for plain output).
  apply(ev: ProgressEvent): LogLine[] {
    switch (ev.type) {
      case 'vertex': {
        const { row } = this.row(ev.id, ev.name, ev.time);
        row.name = ev.name || row.name;
        row.state = ev.state;
        if (ev.state === 'started') {
          row.started = ev.time;
          row.completed = undefined;
        } else {
          row.completed = ev.time;
          if (row.started === undefined) row.started = ev.time;
          if (ev.error) row.error = ev.error;
        }
        return [];
      }
      case 'status': {
        const { row } = this.row(ev.id, ev.id, ev.time);
        let s = row.statuses.find((x) => x.sub === ev.sub);
        if (!s) {
          s = { sub: ev.sub, name: ev.name, started: ev.started ?? ev.time };
          row.statuses.push(s);
        }
        s.name = ev.name;
        if (ev.current !== undefined) s.current = ev.current;
        if (ev.total !== undefined) s.total = ev.total;
        if (ev.completed !== undefined) s.completed = ev.completed;
        return [];
      }
      case 'warning': {
        this.row(ev.id, ev.id, ev.time).row.warnings.push(ev.short);
        return [];
      }
      case 'log': {
        const { row } = this.row(ev.id, ev.id, ev.time);
        const parts = ev.data.replace(/\r\n/g, '\n').split('\n');
        const rest = parts.pop() ?? '';
        const done: LogLine[] = [];
        for (const part of parts) {
          // A line is dated by its first byte, as BuildKit dates it.
          const line = row.partial ? { time: row.partial.time, text: row.partial.text + part } : { time: ev.time, text: part };
          row.partial = null;
          this.keep(row, line);
          done.push(line);
        }
        if (rest) row.partial = row.partial ? { time: row.partial.time, text: row.partial.text + rest } : { time: ev.time, text: rest };
        return done;
      }
    }
  }

  // Keeps the tail bounded: a chatty step must not grow memory.
  private keep(row: VertexRow, line: LogLine): void {
    row.tail.push(line);
    if (row.tail.length > TAIL_LINES) row.tail.shift();
  }

  // Lines still buffered without a newline (flushed when a vertex ends).
  flushPartial(row: VertexRow): LogLine | null {
    if (!row.partial) return null;
    const line = row.partial;
    row.partial = null;
    this.keep(row, line);
    return line;
  }

  counts(): { done: number; total: number } {
    let done = 0;
    for (const v of this.vertices) if (v.state !== 'started') done++;
    return { done, total: this.vertices.length };
  }
}

// BuildKit's failure summary: each failed step (a block even without output:
// it names the step, which the final error line does not) and the tail of
// its output, each line dated from the step's start ("0.412 cc: error: …").
export function errorSummary(model: ProgressModel): string {
  let out = '';
  for (const v of model.vertices) {
    if (v.state !== 'error') continue;
    model.flushPartial(v);
    out += failureBlock(v.name, v.tail.map((l) => `${logOffset(l.time - (v.started ?? l.time))} ${l.text}`));
  }
  return out;
}

// Seconds since the step started: three decimals under 10 s, two under 100 s,
// one beyond (BuildKit's log line stamp).
export function logOffset(ms: number): string {
  const sec = Math.max(0, ms) / 1000;
  return sec.toFixed(sec < 10 ? 3 : sec < 100 ? 2 : 1);
}

// One failed step's block. The output is shown as a terminal would have left
// each line (terminalLine): it sits among img's own lines and must not move them.
export function failureBlock(name: string, tail: string[]): string {
  return ['------', ` > ${escapeControls(name, { oneLine: true })}:`, ...tail.map(terminalLine), '------'].join('\n') + '\n';
}
