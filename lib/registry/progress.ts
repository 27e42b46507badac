// Per-layer progress for pull and push, docker-style: on a terminal one line per blob,
// redrawn in place (≤10 Hz); otherwise one plain line per finished blob.
import { escapeControls } from '../util/escape';
import { bytesSize } from '../util/units';
import type { Digest } from '../images/types';
import type { PullEvent } from './pull';
import type { PushEvent } from './push';

interface Row {
  id: string;
  status: string;
  current: number;
  size: number;
}

const shortId = (d: Digest): string => d.slice(7, 19);

export class LayerProgress {
  private readonly rows = new Map<string, Row>(); // by digest, or by what a retried request was
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  private readonly tty: boolean;
  private finished = false;
  private readonly hidden = new Set<Digest>();

  constructor(private readonly out: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  pullEvent(ev: PullEvent): void {
    if (ev.type === 'blob' && ev.config) this.hidden.add(ev.digest);
    if ('digest' in ev && ev.digest && this.hidden.has(ev.digest)) return; // docker shows layers only
    switch (ev.type) {
      case 'blob':
        this.set(ev.digest, ev.state === 'exists' ? 'Already exists' : 'Waiting', 0, ev.size, ev.state === 'exists');
        break;
      case 'progress':
        this.set(ev.digest, 'Downloading', ev.current, ev.size, false);
        break;
      case 'retry': {
        // Not a blob's (a manifest, a token): a row of its own, named by what it was.
        const key = ev.digest ?? ev.what;
        const status = `Retrying (attempt ${ev.attempt}): ${escapeControls(ev.reason, { oneLine: true })}`;
        this.set(key, status, 0, this.rows.get(key)?.size ?? 0, true, ev.digest ? undefined : ev.what);
        break;
      }
      case 'done':
        this.set(ev.digest, `Pull complete`, ev.size, ev.size, true);
        break;
      default:
        break;
    }
  }

  pushEvent(ev: PushEvent): void {
    if (ev.type === 'blob-start') this.set(ev.digest, 'Preparing', 0, ev.size, false);
    else if (ev.type === 'blob-done') {
      const status = ev.result === 'exists' ? 'Layer already exists' : ev.result === 'mounted' ? `Mounted from ${ev.from}` : 'Pushed';
      this.set(ev.digest, status, ev.size, ev.size, true);
    }
  }

  private set(key: string, status: string, current: number, size: number, final: boolean, label?: string): void {
    if (this.finished) return;
    const row = this.rows.get(key) ?? { id: label ?? shortId(key as Digest), status, current, size };
    Object.assign(row, { status, current, size });
    this.rows.set(key, row);
    if (!this.tty) {
      if (final) this.out.write(`${row.id}: ${status}${status.startsWith('Pull complete') || status === 'Pushed' ? ` (${bytesSize(size)})` : ''}\n`);
      return;
    }
    this.timer ??= setTimeout(() => this.draw(), 100);
  }

  private draw(): void {
    this.timer = undefined;
    let text = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const r of this.rows.values()) {
      const amount = r.status === 'Downloading' ? ` ${bytesSize(r.current)}/${bytesSize(r.size)}` : '';
      text += `\x1b[2K${r.id}: ${r.status}${amount}\n`;
    }
    this.drawn = this.rows.size;
    this.out.write(text);
  }

  // Final redraw; later events are ignored so lines printed after it stay put.
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.tty && this.rows.size) this.draw();
  }
}
