// flock through lockFile: a second process holding an exclusive lock makes a
// nonblocking attempt fail; once it releases, the attempt succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lockFile, loadAddon, LockBusyError } from '../../lib/host';

const HOLDER = `
const { lockFile } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/host/index.ts'))});
(async () => {
  const l = await lockFile(process.argv[1], process.argv[2]);
  process.stdout.write('locked\\n');
  process.stdin.once('data', async () => { await l.release(); process.stdout.write('released\\n'); process.stdin.pause(); });
})();
`;

function startHolder(file: string, mode: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', HOLDER, file, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<[string, () => void]> = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    for (const l of d.split('\n').filter(Boolean)) {
      lines.push(l);
      for (const [w, fn] of waiters) if (w === l) fn();
    }
  });
  const seen = (line: string) =>
    new Promise<void>((resolve) => (lines.includes(line) ? resolve() : waiters.push([line, resolve])));
  return { child, seen };
}

test('exclusive lock held by another process blocks a nonblocking attempt until released', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-flock-'));
  const file = path.join(dir, 'lock');
  const holder = startHolder(file, 'exclusive');
  try {
    await holder.seen('locked');
    assert.equal((fs.statSync(file).mode & 0o777), 0o644);
    await assert.rejects(lockFile(file, 'shared', { wait: false }), (err: unknown) => {
      assert.ok(err instanceof LockBusyError);
      assert.equal(err.code, 'IMG_ERR_LOCK_BUSY');
      assert.match(err.message, /locked by another process/);
      return true;
    });
    // A waiting lock resolves once the holder lets go.
    const waiting = lockFile(file, 'exclusive', { wait: true });
    holder.child.stdin.write('go\n');
    await holder.seen('released');
    const l = await waiting;
    await l.release();
    const l2 = await lockFile(file, 'exclusive', { wait: false });
    await l2.release();
  } finally {
    holder.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('shared locks coexist; an exclusive one excludes them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-flock-'));
  const file = path.join(dir, 'lock');
  const holder = startHolder(file, 'shared');
  try {
    await holder.seen('locked');
    const mine = await lockFile(file, 'shared', { wait: false });
    await assert.rejects(lockFile(file, 'exclusive', { wait: false }), LockBusyError);
    await mine.release();
  } finally {
    holder.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('flock rejects a bad fd with EBADF', async () => {
  await assert.rejects(loadAddon().flock(9999, 'exclusive', false), { code: 'EBADF' });
});
