// enterUserNamespace as the unprivileged test user: the command re-runs as
// root of a namespace whose ids map to the user's subordinate ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { entryArgv, removeDir, runUnprivileged, spawnUnprivileged, userDir } from '../host/fixtures/unprivileged';
import { readSubIds } from '../../lib/exec/idmap';
import { TEST_USER } from '../host/fixtures/unprivileged';

test('enterUserNamespace maps 0 to the caller and 1..N to its subuid range', async () => {
  const dir = userDir('img-userns-');
  try {
    const r = await runUnprivileged(entryArgv('ids', dir), dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.uid, 0);
    assert.equal(out.gid, 0);
    assert.equal(out.env, '1');
    const hostUid = fs.statSync(dir).uid;
    const [range] = await readSubIds('/etc/subuid', TEST_USER, hostUid);
    const lines = (out.uidMap as string).trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
    assert.deepEqual(lines, [[0, hostUid, 1], [1, range.start, range.count]]);
    // chown 1000 inside → subuid start + 999 on the host.
    const st = fs.statSync(path.join(dir, 'owned-by-1000'));
    assert.equal(st.uid, range.start + 999);
  } finally {
    await removeDir(dir);
  }
});

test('the outer process exits with the namespaced command\'s exit code', async () => {
  const dir = userDir('img-userns-');
  try {
    const r = await runUnprivileged(entryArgv('exit', dir, '7'), dir);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(JSON.parse(r.stdout).uid, 0);
  } finally {
    await removeDir(dir);
  }
});

for (const [sig, expected] of [['SIGTERM', 42], ['SIGINT', 130]] as const) {
  test(`${sig} to the outer process (no terminal) is forwarded into the namespace`, async () => {
    const dir = userDir('img-userns-');
    const child = spawnUnprivileged(entryArgv('wait', dir), dir);
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout!.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          if (out.includes('ready')) resolve();
        });
        child.on('close', () => reject(new Error(`exited early: ${out}`)));
      });
      const outer = findOuter(child.pid!);
      process.kill(outer, sig);
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      // The namespaced command handles SIGTERM (exit 42); SIGINT kills it (128+2).
      if (sig === 'SIGTERM') assert.match(out, /got SIGTERM/);
      assert.equal(code, expected);
    } finally {
      child.kill('SIGKILL');
      await removeDir(dir);
    }
  });
}

// runuser (when root) sits between us and the outer node; walk /proc for the
// first node descendant.
function findOuter(pid: number): number {
  const children = (p: number): number[] => {
    try {
      return fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    const comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    if (comm.startsWith('node') || comm === 'MainThread') return p;
    queue.push(...children(p));
  }
  throw new Error('outer node process not found');
}

test('without subordinate ranges the namespace maps only the caller, with a warning naming the fix', async () => {
  const dir = userDir('img-userns-');
  try {
    const empty = path.join(dir, 'empty-subids');
    fs.writeFileSync(empty, '# nobody here\n');
    const r = await runUnprivileged(['env', `IMG_SUBUID_FILE=${empty}`, `IMG_SUBGID_FILE=${empty}`, ...entryArgv('exit', dir, '0')], dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.uid, 0);
    const hostUid = fs.statSync(dir).uid;
    assert.deepEqual((out.uidMap as string).trim().split(/\s+/).map(Number), [0, hostUid, 1]);
    assert.match(r.stderr, new RegExp(`WARN no subordinate ids for ${TEST_USER}`));
    assert.match(r.stderr, new RegExp(`"${TEST_USER}:100000:65536"`));
    assert.match(r.stderr, new RegExp(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${TEST_USER}`));
  } finally {
    await removeDir(dir);
  }
});

// A host with user namespaces switched off, simulated one level down:
// user.max_user_namespaces=0 inside an outer namespace, then a non-root
// user there runs the door.
const haveTools = ['/usr/bin/unshare', '/usr/bin/setpriv'].every((p) => fs.existsSync(p));
test('with user namespaces disabled the door fails with the sysctl to change', { skip: !haveTools && 'needs util-linux unshare and setpriv' }, async () => {
  const dir = userDir('img-userns-');
  fs.chmodSync(dir, 0o777);
  try {
    const inner = ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'env', `HOME=${dir}`, `TMPDIR=${dir}`, ...entryArgv('exit', dir, '0')];
    const script = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"';
    const r = await runUnprivileged(['unshare', '--map-auto', '--map-root-user', 'sh', '-c', script, 'sh', ...inner], dir);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /ImgError: cannot create a user namespace \(ENOSPC\): unprivileged user namespaces are disabled on this host/);
    assert.match(r.stderr, /sysctl -w user\.max_user_namespaces=/);
  } finally {
    await removeDir(dir);
  }
});
