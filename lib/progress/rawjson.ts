// `--progress rawjson`: BuildKit's SolveStatus stream, one JSON object per
// line, as `buildctl build --progress=rawjson` and `docker buildx build
// --progress=rawjson` print it (client.SolveStatus through Go's encoding/json),
// so tools that read BuildKit's stream read img's unchanged:
//
//   {"vertexes":[{"digest":"sha256:…","inputs":["sha256:…"],"name":"[2/3] RUN make","started":"2024-05-01T10:20:30.1Z"}]}
//   {"statuses":[{"id":"extracting sha256:…","vertex":"sha256:…","name":"…","total":2120000,"current":2120000,"timestamp":"…","started":"…","completed":"…"}]}
//   {"logs":[{"vertex":"sha256:…","stream":1,"data":"aGVsbG8K","timestamp":"…"}]}
//   {"warnings":[{"vertex":"sha256:…","level":1,"short":"…","detail":["…"],"url":"…","sourceInfo":{…},"range":[{"start":{"line":3},"end":{"line":3}}]}]}
//
// Go's field order and omitempty rules hold (a status's "current" and
// "timestamp" are always there; "stream" 0 is left out); byte fields are
// base64; times are UTC RFC 3339. Every vertex update repeats what is known
// of the vertex, as BuildKit's do. Steps of the build graph already have
// digests for ids; img's own steps ("[internal] load build definition",
// exporters) get the sha256 of their id, stable within and across builds.
import { createHash } from 'node:crypto';
import { goMarshal, goTime } from '../util/gojson';
import type { ProgressEvent, Renderer } from './events';

interface VertexInfo {
  name: string;
  inputs?: string[];
  started?: number;
}

// context.Canceled's text: BuildKit's readers tell a canceled step by it.
const CANCELED = 'context canceled';

export class RawJsonRenderer implements Renderer {
  private readonly vertices = new Map<string, VertexInfo>();
  private readonly statusStarts = new Map<string, number>();
  private readonly digests = new Map<string, string>();

  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  private digest(id: string): string {
    if (/^sha256:[a-f0-9]{64}$/.test(id)) return id;
    let d = this.digests.get(id);
    if (!d) this.digests.set(id, (d = `sha256:${createHash('sha256').update(id).digest('hex')}`));
    return d;
  }

  private emit(status: Record<string, unknown>): void {
    this.out.write(goMarshal(status) + '\n');
  }

  write(ev: ProgressEvent): void {
    switch (ev.type) {
      case 'vertex': {
        let v = this.vertices.get(ev.id);
        if (!v) this.vertices.set(ev.id, (v = { name: ev.name }));
        if (ev.name) v.name = ev.name;
        if (ev.inputs?.length) v.inputs = ev.inputs;
        if (ev.state === 'started') v.started = ev.time;
        v.started ??= ev.time; // a cached or failed step that never said it started
        const out: Record<string, unknown> = { digest: this.digest(ev.id) };
        if (v.inputs) out.inputs = v.inputs.map((i) => this.digest(i));
        out.name = v.name;
        out.started = goTime(v.started);
        if (ev.state !== 'started') out.completed = goTime(ev.time);
        if (ev.state === 'cached') out.cached = true;
        if (ev.state === 'error') out.error = ev.error || 'failed';
        if (ev.state === 'canceled') out.error = CANCELED;
        this.emit({ vertexes: [out] });
        return;
      }
      case 'status': {
        const key = `${ev.id}\0${ev.sub}`;
        let started = this.statusStarts.get(key);
        if (started === undefined) this.statusStarts.set(key, (started = ev.started ?? ev.time));
        const out: Record<string, unknown> = { id: ev.sub, vertex: this.digest(ev.id), name: ev.name };
        if (ev.total) out.total = ev.total;
        out.current = ev.current ?? 0;
        out.timestamp = goTime(ev.time);
        out.started = goTime(started);
        if (ev.completed !== undefined) out.completed = goTime(ev.completed);
        this.emit({ statuses: [out] });
        return;
      }
      case 'log': {
        const bytes = ev.raw ?? Buffer.from(ev.data, 'utf8');
        this.emit({ logs: [{ vertex: this.digest(ev.id), stream: ev.stream, data: Buffer.from(bytes).toString('base64'), timestamp: goTime(ev.time) }] });
        return;
      }
      case 'warning': {
        const out: Record<string, unknown> = { vertex: this.digest(ev.id) };
        if (ev.level) out.level = ev.level;
        out.short = b64(ev.short);
        if (ev.detail.length) out.detail = ev.detail.map(b64);
        if (ev.url) out.url = ev.url;
        if (ev.source) {
          out.sourceInfo = { filename: ev.source.file, data: b64(ev.source.text), language: 'Dockerfile' };
          out.range = ev.source.ranges.map((r) => ({ start: { line: r.start }, end: { line: r.end } }));
        }
        this.emit({ warnings: [out] });
        return;
      }
    }
  }

  async close(): Promise<void> {}
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}
