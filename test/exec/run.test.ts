// runContainer lifecycle as the rootless user: abort, SIGTERM of img itself,
// and the no-PID-namespace fallback all leave no process, mount or runc state.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { cleanup, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

const SCRIPT = 'test/snapshot/scenarios/run.ts';

function hostSleepers(): number {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() === 'sleep 1000').length;
}

describe('runContainer lifecycle (rootless)', { skip: skipUnlessRootless() }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });
  const state = () => {
    const d = tempDir('img-run-');
    dirs.push(d);
    return d;
  };
  // Each test gets its own runc state dir: other test files run containers at the
  // same time, and "no runc state left" must only look at this test's.
  const runtimeDir = () => state();

  test('AbortSignal kills the container: AbortError, no leftovers', async () => {
    const before = hostSleepers();
    const res = await runScriptRootless(SCRIPT, [state(), 'abort'], { timeoutMs: 60_000, env: { XDG_RUNTIME_DIR: runtimeDir() } });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    assert.match(r.error, /AbortError/);
    assert.match(r.out, /started/);
    assert.equal(r.sleepers, 0);
    assert.deepEqual(r.mountsLeft, []);
    assert.deepEqual(r.runcState, []);
    assert.equal(hostSleepers(), before);
  });

  test('SIGTERM of img: runc killed and deleted, mounts released, exit 143', async () => {
    const before = hostSleepers();
    const st = state();
    const xdg = runtimeDir();
    const res = await runScriptRootless(SCRIPT, [st, 'sigterm'], { timeoutMs: 60_000, env: { XDG_RUNTIME_DIR: xdg } });
    assert.equal(res.code, 143, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n')[0]);
    assert.ok(r.mountsBefore >= 1, 'the snapshot was mounted while the step ran');
    assert.equal(hostSleepers(), before);
    const root = `${xdg}/img/runc`;
    if (fs.existsSync(root)) assert.deepEqual(fs.readdirSync(root), [], `runc state left in ${root}`);
    // The snapshot dir has no stale mount point of ours either.
    const mnt = `${st}/snapshots/overlayfs/mnt`;
    assert.deepEqual(fs.existsSync(mnt) ? fs.readdirSync(mnt) : [], []);
    // Nor the step's OCI bundle (tmp/exec/img-<id>/config.json).
    const exec = `${st}/tmp/exec`;
    assert.deepEqual(fs.existsSync(exec) ? fs.readdirSync(exec).filter((n) => !n.startsWith('img-files-')) : [], [], 'bundle left in tmp/exec');
  });

  test('without a fresh /proc (IMG_NO_PROC_MOUNT=1): no pid namespace, warning, leftovers still killed', async () => {
    const before = hostSleepers();
    const res = await runScriptRootless(SCRIPT, [state(), 'noproc'], { timeoutMs: 60_000, env: { IMG_NO_PROC_MOUNT: '1', XDG_RUNTIME_DIR: runtimeDir() } });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /WARN .*fresh \/proc/);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    assert.equal(r.exit, 0, 'the step ends when its shell does, though a background process was left');
    // Without a pid namespace runc warns that it cannot freeze the container's
    // processes: that goes to its log (shown by --debug), not the step's output.
    const runcSaid = (r.runtimeLog as { level: string; msg: string }[]).map((e) => `${e.level}: ${e.msg}`);
    assert.ok(runcSaid.some((l) => /^warning: cannot toggle freezer/.test(l)), `runc log: ${JSON.stringify(runcSaid)}`);
    assert.doesNotMatch(r.out, /freezer|level=|lstat/);
    const pid = Number(/pid=(\d+)/.exec(r.out)?.[1]);
    assert.ok(pid > 1, `shell is pid ${pid}: expected no pid namespace`);
    assert.equal(r.sleepers, 0);
    assert.deepEqual(r.mountsLeft, []);
    assert.deepEqual(r.runcState, [], 'runc run deleted the container it ran');
    assert.equal(hostSleepers(), before);
  });

  test('steps share one generated resolv.conf and hosts per process; nothing is left after it exits', async () => {
    const st = state();
    const res = await runScriptRootless(SCRIPT, [st, 'twice'], { timeoutMs: 60_000, env: { XDG_RUNTIME_DIR: runtimeDir() } });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    assert.equal(r.exit0, 0);
    assert.equal(r.exit1, 0);
    const [first, second] = r.binds as string[];
    assert.match(first, /^\/etc\/resolv\.conf \S*\/tmp\/exec\/img-files-\w+\/resolv\.conf-\w+$/m);
    assert.match(first, /^\/etc\/hosts \S*\/tmp\/exec\/img-files-\w+\/hosts-\w+$/m);
    assert.equal(second, first, 'the second step binds the same files');
    // While the process lived: the shared files' directory only (each bundle removed after its step).
    assert.equal(r.execDir.length, 1);
    assert.match(r.execDir[0], /^img-files-/);
    assert.deepEqual(fs.readdirSync(`${st}/tmp/exec`), [], 'the shared files went with the process');
  });

  test("without runc's log file (a build without --debug), a command that does not exist still says why", async () => {
    const res = await runScriptRootless(SCRIPT, [state(), 'nocmd'], { timeoutMs: 60_000, env: { XDG_RUNTIME_DIR: runtimeDir(), RUNTIME_LOG: '0' } });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    assert.notEqual(r.exit, 0);
    assert.deepEqual(r.runtimeLog, []);
    assert.match(r.out, /\/no\/such\/program/, 'runc printed its error on the step output');
    assert.deepEqual(r.runcState, []);
  });

  test('a command that does not exist: the step fails, no runc state left', async () => {
    const res = await runScriptRootless(SCRIPT, [state(), 'nocmd'], { timeoutMs: 60_000, env: { XDG_RUNTIME_DIR: runtimeDir() } });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    assert.ok(r.error !== undefined || r.exit !== 0, `the step should fail: ${JSON.stringify(r)}`);
    assert.deepEqual(r.mountsLeft, []);
    assert.deepEqual(r.runcState, []);
  });
});
