// The user-namespace entry as the unprivileged test user: img-launch
// (addon/launcher/img-launch.c) in front of a program, and the door
// (enterUserNamespace) of a program started without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  LAUNCHER,
  TEST_USER,
  entryArgv,
  entryArgvDirect,
  isRoot,
  removeDir,
  runUnprivileged,
  spawnUnprivileged,
  userDir,
} from '../host/fixtures/unprivileged';
import { readSubIds } from '../../lib/exec/idmap';
import { NAMESPACE_COMMANDS, needsNamespace } from '../../lib/cli/launch';

const noLauncher = !fs.existsSync(LAUNCHER) && `img-launch is not built (${LAUNCHER}): run npm run build:addon`;

function mapLines(text: string): number[][] {
  return text
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
}

// A copy of newuidmap/newgidmap without the setuid bit: the kernel refuses its
// maps exactly as it refuses the real helper's in a container that may not map ids.
function refusedHelpers(dir: string): string {
  const bin = path.join(dir, 'refused-bin');
  fs.mkdirSync(bin);
  for (const h of ['newuidmap', 'newgidmap']) {
    fs.copyFileSync(`/usr/bin/${h}`, path.join(bin, h));
    fs.chmodSync(path.join(bin, h), 0o755);
  }
  return bin;
}

test('img-launch maps 0 to the caller and 1..N to its subuid range', { skip: noLauncher }, async () => {
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
    assert.deepEqual(mapLines(out.uidMap), [[0, hostUid, 1], [1, range.start, range.count]]);
    // chown 1000 inside → subuid start + 999 on the host.
    const st = fs.statSync(path.join(dir, 'owned-by-1000'));
    assert.equal(st.uid, range.start + 999);
  } finally {
    await removeDir(dir);
  }
});

test('the launcher exits with the namespaced program\'s exit code', { skip: noLauncher }, async () => {
  const dir = userDir('img-userns-');
  try {
    const r = await runUnprivileged(entryArgv('exit', dir, '7'), dir);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(JSON.parse(r.stdout).uid, 0);
  } finally {
    await removeDir(dir);
  }
});

// runuser (when root) sits between us and the launcher: walk /proc for it.
function findByComm(pid: number, comm: string): number {
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    if (fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm) return p;
    try {
      queue.push(...fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* gone */
    }
  }
  throw new Error(`no ${comm} under ${pid}`);
}

function startWaiting(dir: string) {
  const child = spawnUnprivileged(entryArgv('wait', dir), dir);
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    child.on('close', () => reject(new Error(`exited early: ${out}`)));
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, ready, closed, output: () => out };
}

for (const [sig, expected] of [['SIGTERM', 42], ['SIGINT', 130]] as const) {
  test(`${sig} sent to img-launch (no terminal) reaches the program; its status comes back`, { skip: noLauncher }, async () => {
    const dir = userDir('img-userns-');
    const w = startWaiting(dir);
    try {
      await w.ready;
      const launcher = findByComm(w.child.pid!, 'img-launch');
      process.kill(launcher, sig);
      const { code, signal } = await w.closed;
      // The program handles SIGTERM (exit 42); SIGINT kills it, and the launcher dies the same way.
      if (sig === 'SIGTERM') assert.match(w.output(), /got SIGTERM/);
      // runuser (as root) reports a signal death as 128+n.
      assert.equal(code ?? 128 + (signal === 'SIGINT' ? 2 : 0), expected);
    } finally {
      w.child.kill('SIGKILL');
      await removeDir(dir);
    }
  });
}

test('the namespaced program dies with img-launch, even when the launcher is SIGKILLed', { skip: noLauncher }, async () => {
  const dir = userDir('img-userns-');
  const w = startWaiting(dir);
  try {
    await w.ready;
    const launcher = findByComm(w.child.pid!, 'img-launch');
    const inner = fs.readFileSync(`/proc/${launcher}/task/${launcher}/children`, 'utf8').trim().split(/\s+/).map(Number);
    assert.equal(inner.length, 1);
    process.kill(launcher, 'SIGKILL');
    await w.closed;
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${inner[0]}`); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(fs.existsSync(`/proc/${inner[0]}`), false, 'the namespaced program is gone');
  } finally {
    w.child.kill('SIGKILL');
    await removeDir(dir);
  }
});

test('real root runs the program as it is, with no namespace and no record', { skip: (!isRoot && 'needs root') || noLauncher }, () => {
  const out = execFileSync(LAUNCHER, ['enter', 'sh', '-c', 'cat /proc/self/uid_map; echo "[${IMG_ENTRY-}] [${IMG_USERNS-}]"'], { encoding: 'utf8' });
  assert.deepEqual(mapLines(out.split('\n')[0]), [[0, 0, 4294967295]]);
  assert.match(out, /^\[\] \[\]$/m);
});

test('without subordinate ranges the namespace maps only the caller, with one warning naming the fix', { skip: noLauncher }, async () => {
  const dir = userDir('img-userns-');
  try {
    const empty = path.join(dir, 'empty-subids');
    fs.writeFileSync(empty, '# nobody here\n');
    const r = await runUnprivileged(['env', `IMG_SUBUID_FILE=${empty}`, `IMG_SUBGID_FILE=${empty}`, ...entryArgv('exit', dir, '0')], dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.uid, 0);
    const hostUid = fs.statSync(dir).uid;
    assert.deepEqual(mapLines(out.uidMap), [[0, hostUid, 1]]);
    assert.equal(r.stderr.match(/^WARN /gm)?.length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`WARN user namespace maps only your own ids \\(uid and gid as 0\\): no subordinate ids for ${TEST_USER} in ${empty} and ${empty}\\.`));
    assert.match(r.stderr, /Other owners in images and COPY --chown are kept in the layers img writes, but RUN steps see those files as root's, and a RUN chown or USER to other ids fails\./);
    assert.match(r.stderr, new RegExp(`"${TEST_USER}:100000:65536"`));
    assert.match(r.stderr, new RegExp(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${TEST_USER}`));
  } finally {
    await removeDir(dir);
  }
});

// Started without img-launch, the door enters by itself. With the launcher
// built it execs it in place; with none (IMG_LAUNCHER='') it re-executes from
// Node with the same fallbacks as the launcher's.
for (const via of ['img-launch', 'img'] as const) {
  test(`started without the launcher, the door enters through ${via === 'img' ? 'its own re-exec' : 'img-launch'}; a refused newuidmap degrades to a single-id map`, { skip: noLauncher }, async () => {
    const dir = userDir('img-userns-');
    try {
      const env = via === 'img' ? ['IMG_LAUNCHER='] : [];
      const full = await runUnprivileged(['env', 'IMG_DEBUG=1', ...env, ...entryArgvDirect('exit', dir, '0')], dir);
      assert.equal(full.code, 0, full.stderr);
      assert.match(full.stderr, via === 'img' ? /DEBU img-launch not found \(test\): re-executing in a user namespace from Node/ : /DEBU img was started without img-launch \(test\): re-executing through \S+img-launch/);
      assert.match(full.stderr, new RegExp(`DEBU user namespace: entered by ${via}.*; mapping subids: the subordinate ranges of ${TEST_USER}`));
      assert.equal(mapLines(JSON.parse(full.stdout).uidMap).length, 2);

      const bin = refusedHelpers(dir);
      const refused = await runUnprivileged(['env', `PATH=${bin}:/usr/bin:/bin`, ...env, ...entryArgvDirect('exit', dir, '0')], dir);
      assert.equal(refused.code, 0, refused.stderr);
      assert.deepEqual(mapLines(JSON.parse(refused.stdout).uidMap), [[0, fs.statSync(dir).uid, 1]]);
      assert.equal(refused.stderr.match(/^WARN /gm)?.length, 1, refused.stderr);
      assert.match(
        refused.stderr,
        new RegExp(`WARN user namespace maps only your own ids \\(uid and gid as 0\\): ${bin}/newuidmap failed \\(exit 1\\): newuidmap: write to uid_map failed: Operation not permitted\\.`),
      );
      assert.match(refused.stderr, /newuidmap and newgidmap must be setuid root or carry the cap_setuid\/cap_setgid file capabilities/);
    } finally {
      await removeDir(dir);
    }
  });
}

// A host with user namespaces switched off, simulated one level down:
// user.max_user_namespaces=0 inside an outer namespace, then a non-root
// user there runs the fixture.
const haveTools = ['/usr/bin/unshare', '/usr/bin/setpriv'].every((p) => fs.existsSync(p));
test('with user namespaces disabled the entry fails with the sysctl to change', { skip: (!haveTools && 'needs util-linux unshare and setpriv') || noLauncher }, async () => {
  const dir = userDir('img-userns-');
  fs.chmodSync(dir, 0o777);
  try {
    const inner = ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'env', `HOME=${dir}`, `TMPDIR=${dir}`, ...entryArgv('exit', dir, '0')];
    const script = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"';
    const r = await runUnprivileged(['unshare', '--map-auto', '--map-root-user', 'sh', '-c', script, 'sh', ...inner], dir);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /cannot create a user namespace \(ENOSPC\): img needs one to work as an unprivileged user/);
    assert.match(r.stderr, /user namespaces are switched off: sysctl -w user\.max_user_namespaces=15000/);
  } finally {
    await removeDir(dir);
  }
});

test('img-launch and lib/cli/launch.ts agree on which command lines enter the namespace', { skip: noLauncher }, () => {
  const lines = [
    ['build', '.'],
    ['-s', '/x', 'build', '.'],
    ['-ds', '/x', 'build', '.'],
    ['-d', '-b', 'native', 'du'],
    ['-bnative', 'prune'],
    ['--state=/x', 'unpack', 'busybox'],
    ['--backend', 'overlayfs', '--debug', 'version'],
    ['ls'],
    ['pull', 'busybox'],
    ['-h'],
    ['--version'],
    ['build', '-h', '.'],
    ['build', '--help'],
    ['help', 'build'],
    ['-x', 'build'],
    ['--', 'build'],
    ['-s'],
    [],
  ];
  for (const c of NAMESPACE_COMMANDS) lines.push([c]);
  for (const args of lines) {
    const c = execFileSync(LAUNCHER, ['decide', ...args], { encoding: 'utf8' }).trim();
    assert.equal(c === 'enter', needsNamespace(args), `img ${args.join(' ')}: img-launch says ${c}`);
  }
});
