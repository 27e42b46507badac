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
  tail: string[]; // last complete lines of output
  partial: string; // incomplete last line
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
    row = { id, index: this.vertices.length + 1, name, state: 'started', started: time, statuses: [], tail: [], partial: '' };
    this.byId.set(id, row);
    this.vertices.push(row);
    return { row, created: true };
  }

  get(id: string): VertexRow | undefined {
    return this.byId.get(id);
  }

  // Applies an event; returns the complete lines a log event produced (for plain output).
  apply(ev: ProgressEvent): string[] {
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
      case 'log': {
        const { row } = this.row(ev.id, ev.id, ev.time);
        const text = row.partial + ev.data.replace(/\r\n/g, '\n');
        const parts = text.split('\n');
        row.partial = parts.pop() ?? '';
        // Keep the tail bounded: a chatty step must not grow memory.
        for (const line of parts) {
          row.tail.push(line);
          if (row.tail.length > TAIL_LINES) row.tail.shift();
        }
        return parts;
      }
    }
  }

  // Lines still buffered without a newline (flushed when a vertex ends).
  flushPartial(row: VertexRow): string | null {
    if (!row.partial) return null;
    const line = row.partial;
    row.partial = '';
    row.tail.push(line);
    if (row.tail.length > TAIL_LINES) row.tail.shift();
    return line;
  }

  counts(): { done: number; total: number } {
    let done = 0;
    for (const v of this.vertices) if (v.state !== 'started') done++;
    return { done, total: this.vertices.length };
  }
}

// BuildKit's failure summary: the failing step and the tail of its output.
export function errorSummary(model: ProgressModel): string {
  let out = '';
  for (const v of model.vertices) {
    if (v.state !== 'error') continue;
    model.flushPartial(v);
    if (v.tail.length === 0) continue; // nothing to show beyond the error line itself
    out += failureBlock(v.name, v.tail);
  }
  return out;
}

// One failed step's block. The output is shown as a terminal would have left
// each line (terminalLine): it sits among img's own lines and must not move them.
export function failureBlock(name: string, tail: string[]): string {
  return ['------', ` > ${escapeControls(name, { oneLine: true })}:`, ...tail.map(terminalLine), '------'].join('\n') + '\n';
}
