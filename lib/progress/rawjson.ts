// `--progress rawjson`: every event as one JSON object per line, for tools.
import type { ProgressEvent, Renderer } from './events';

export class RawJsonRenderer implements Renderer {
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  write(ev: ProgressEvent): void {
    this.out.write(JSON.stringify(ev) + '\n');
  }

  async close(): Promise<void> {}
}
