// Layer progress lines: redrawn in place on a terminal, one line per finished blob otherwise.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { Digest } from '../../lib/images/types';
import { LayerProgress } from '../../lib/registry/progress';

const A = `sha256:${'a'.repeat(64)}` as Digest;
const B = `sha256:${'b'.repeat(64)}` as Digest;

function sink(tty: boolean): { out: PassThrough & { isTTY?: boolean }; text: () => string } {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean };
  out.isTTY = tty;
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString() };
}

describe('layer progress', () => {
  it('prints plain lines for finished blobs when not on a terminal', () => {
    const { out, text } = sink(false);
    const p = new LayerProgress(out);
    p.pullEvent({ type: 'blob', digest: A, size: 10, state: 'exists' });
    p.pullEvent({ type: 'blob', digest: B, size: 2048, state: 'waiting' });
    p.pullEvent({ type: 'progress', digest: B, current: 1024, size: 2048 });
    p.pullEvent({ type: 'done', digest: B, size: 2048 });
    p.finish();
    assert.equal(text(), 'aaaaaaaaaaaa: Already exists\nbbbbbbbbbbbb: Pull complete (2KiB)\n');
  });

  it('redraws one line per blob on a terminal', async () => {
    const prev = process.env.TERM;
    process.env.TERM = 'xterm';
    try {
      const { out, text } = sink(true);
      const p = new LayerProgress(out);
      p.pullEvent({ type: 'blob', digest: A, size: 4096, state: 'waiting' });
      p.pullEvent({ type: 'progress', digest: A, current: 1024, size: 4096 });
      await new Promise((r) => setTimeout(r, 150));
      p.pushEvent({ type: 'blob-done', digest: B, size: 1, result: 'mounted', from: 'library/busybox' });
      p.pullEvent({ type: 'done', digest: A, size: 4096 });
      p.finish();
      p.pullEvent({ type: 'progress', digest: A, current: 1, size: 4096 }); // ignored after finish
      assert.equal(
        text(),
        '\x1b[2Kaaaaaaaaaaaa: Downloading 1KiB/4KiB\n' +
          '\x1b[1A\x1b[2Kaaaaaaaaaaaa: Pull complete\n\x1b[2Kbbbbbbbbbbbb: Mounted from library/busybox\n',
      );
    } finally {
      if (prev === undefined) delete process.env.TERM;
      else process.env.TERM = prev;
    }
  });
});
