// img prune takes what dead img processes left behind (partial writes in ingest/
// that no process holds; the rest by age: untouched for an hour) and keeps what a
// live process may still be using.
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { lockFile } from '../../lib/host/index';
import { prune } from '../../lib/state/du';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }))));

const TWO_HOURS_AGO = new Date(Date.now() - 2 * 60 * 60 * 1000);

async function put(state: string, rel: string, opts: { old?: boolean; dir?: boolean } = {}): Promise<void> {
  const p = path.join(state, rel);
  await fsp.mkdir(opts.dir ? p : path.dirname(p), { recursive: true });
  if (!opts.dir) await fsp.writeFile(p, 'x'.repeat(100));
  if (opts.old) await fsp.utimes(p, TWO_HOURS_AGO, TWO_HOURS_AGO);
}

async function exists(state: string, rel: string): Promise<boolean> {
  return fsp.lstat(path.join(state, rel)).then(
    () => true,
    () => false,
  );
}

test('prune removes stale leftovers and keeps young ones', async () => {
  const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-leftovers-'));
  dirs.push(state);
  const sn = 'snapshots/native';
  // Children first: creating an entry touches its parent's mtime.
  await put(state, 'ingest/dead-writer'); // young, but nobody holds it
  await put(state, 'ingest/live-writer');
  const writer = await lockFile(path.join(state, 'ingest/live-writer'), 'exclusive'); // as its writer does
  await put(state, 'tmp/http-download', { old: true });
  await put(state, 'tmp/secret-young/secret');
  await put(state, 'tmp/exec/img-dead', { dir: true, old: true });
  await put(state, 'tmp/exec/img-running/config.json');
  await fsp.utimes(path.join(state, 'tmp/exec'), TWO_HOURS_AGO, TWO_HOURS_AGO); // a long RUN: the folder is old, its bundle is not
  await put(state, 'snapshots/tmp/probe-old', { dir: true, old: true });
  await put(state, `${sn}/halfmade/fs/file`);
  await fsp.utimes(path.join(state, sn, 'halfmade'), TWO_HOURS_AGO, TWO_HOURS_AGO);
  await put(state, `${sn}/preparing/fs/file`); // no meta.json yet, but young: being made
  await put(state, `${sn}/trash/being-deleted/file`);
  await put(state, `${sn}/mnt/dead-mount`, { dir: true, old: true });
  await put(state, `${sn}/mnt/live-mount`, { dir: true });
  await fsp.mkdir(path.join(state, sn, 'l'), { recursive: true });
  await fsp.symlink('../gone/fs', path.join(state, sn, 'l', 'DANGLING'));
  await fsp.symlink('../preparing/fs', path.join(state, sn, 'l', 'LIVE'));

  await prune(state);
  await writer.release();

  const gone = ['ingest/dead-writer', 'tmp/http-download', 'tmp/exec/img-dead', 'snapshots/tmp/probe-old', `${sn}/halfmade`, `${sn}/trash/being-deleted`, `${sn}/mnt/dead-mount`, `${sn}/l/DANGLING`];
  const kept = ['ingest/live-writer', 'tmp/secret-young/secret', 'tmp/exec/img-running/config.json', `${sn}/preparing/fs/file`, `${sn}/mnt/live-mount`, `${sn}/l/LIVE`];
  for (const rel of gone) assert.equal(await exists(state, rel), false, `${rel} should be removed`);
  for (const rel of kept) assert.equal(await exists(state, rel), true, `${rel} should be kept`);
});
