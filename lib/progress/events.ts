// The build's one progress stream. The solver (and exporters) emit events
// through a `Progress`; renderers (tty, plain, rawjson) subscribe to it.
// Events are plain values; `--progress rawjson` prints them as BuildKit's SolveStatus.
import { StringDecoder } from 'node:string_decoder';

export type VertexState = 'started' | 'completed' | 'cached' | 'error' | 'canceled';

export interface VertexEvent {
  type: 'vertex';
  id: string; // vertex id (the graph's "sha256:…" digest, or a synthetic id like "export:image")
  name: string;
  state: VertexState;
  time: number; // ms since epoch
  error?: string;
  inputs?: string[]; // ids of the vertices it reads (BuildKit's Vertex.inputs)
}

export interface LogEvent {
  type: 'log';
  id: string;
  stream: 1 | 2;
  data: string; // text as produced (may hold several lines, or a partial line)
  raw?: Uint8Array; // the bytes, when they came as bytes (rawjson sends them unchanged)
  time: number;
}

// A build check or other warning about the build, BuildKit's VertexWarning:
// attached to a vertex, its one-line `short`, `detail` lines, a URL, and the
// Dockerfile lines it is about.
export interface WarningEvent {
  type: 'warning';
  id: string;
  level: number; // 1 for build checks, as BuildKit's frontend
  short: string;
  detail: string[];
  url?: string;
  source?: { file: string; text: string; ranges: { start: number; end: number }[] };
  time: number;
}

// A sub-line under a vertex: a pull of one blob, "exporting layers", "naming to ...".
export interface StatusEvent {
  type: 'status';
  id: string; // vertex id
  sub: string; // status id, unique within the vertex
  name: string;
  current?: number;
  total?: number;
  started?: number;
  completed?: number; // set when done
  time: number;
}

export type ProgressEvent = VertexEvent | LogEvent | StatusEvent | WarningEvent;

export type ProgressListener = (ev: ProgressEvent) => void;

export interface Renderer {
  write(ev: ProgressEvent): void;
  // Flushes and draws the final state. `ok` false when the build failed.
  close(ok: boolean): Promise<void>;
}

// Emitter handed to the solver. Thin: it timestamps and fans out.
export class Progress {
  private readonly listeners: ProgressListener[] = [];
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  on(fn: ProgressListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(ev: ProgressEvent): void {
    for (const l of this.listeners) l(ev);
  }

  // `inputs`: the ids of the vertices this one reads, when it has any.
  started(id: string, name: string, inputs?: string[]): void {
    this.emit({ type: 'vertex', id, name, state: 'started', time: this.now(), ...(inputs?.length ? { inputs } : {}) });
  }

  completed(id: string, name: string, inputs?: string[]): void {
    this.emit({ type: 'vertex', id, name, state: 'completed', time: this.now(), ...(inputs?.length ? { inputs } : {}) });
  }

  cached(id: string, name: string, inputs?: string[]): void {
    this.emit({ type: 'vertex', id, name, state: 'cached', time: this.now(), ...(inputs?.length ? { inputs } : {}) });
  }

  failed(id: string, name: string, error: string, inputs?: string[]): void {
    this.emit({ type: 'vertex', id, name, state: 'error', error, time: this.now(), ...(inputs?.length ? { inputs } : {}) });
  }

  canceled(id: string, name: string, inputs?: string[]): void {
    this.emit({ type: 'vertex', id, name, state: 'canceled', time: this.now(), ...(inputs?.length ? { inputs } : {}) });
  }

  // Output bytes are decoded per vertex as a stream: a UTF-8 character split
  // across two chunks stays one character.
  private readonly decoders = new Map<string, StringDecoder>();

  log(id: string, data: string | Uint8Array, stream: 1 | 2 = 1): void {
    if (data.length === 0) return;
    if (typeof data === 'string') {
      this.emit({ type: 'log', id, stream, data, time: this.now() });
      return;
    }
    let dec = this.decoders.get(id);
    if (!dec) this.decoders.set(id, (dec = new StringDecoder('utf8')));
    this.emit({ type: 'log', id, stream, data: dec.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength)), raw: data, time: this.now() });
  }

  warn(id: string, w: Omit<WarningEvent, 'type' | 'id' | 'time'>): void {
    this.emit({ type: 'warning', id, ...w, time: this.now() });
  }

  status(id: string, sub: string, s: { name: string; current?: number; total?: number; done?: boolean }): void {
    const t = this.now();
    this.emit({
      type: 'status',
      id,
      sub,
      name: s.name,
      current: s.current,
      total: s.total,
      completed: s.done ? t : undefined,
      time: t,
    });
  }

  // Runs fn as one vertex: started → completed | error. Returns fn's value.
  async vertex<T>(id: string, name: string, fn: () => Promise<T>): Promise<T> {
    this.started(id, name);
    try {
      const v = await fn();
      this.completed(id, name);
      return v;
    } catch (err) {
      this.failed(id, name, (err as Error)?.message ?? String(err));
      throw err;
    }
  }
}

// Human sizes as BuildKit prints them in progress lines: 1.15kB, 116.83MB, 02B style avoided.
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(2)}${units[i]}`;
}

export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}
