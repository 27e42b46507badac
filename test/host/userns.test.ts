// cloneUserns + releaseChild + waitpid at the addon level: the child waits for
// its maps, runs as namespace root, and its exit status comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon } from '../../lib/host';

const addon = loadAddon();
const uid = process.getuid!();
const gid = process.getgid!();

// Single-id maps, which any user may write for its own child namespace.
function mapSelf(pid: number) {
  fs.writeFileSync(`/proc/${pid}/setgroups`, 'deny');
  fs.writeFileSync(`/proc/${pid}/uid_map`, `0 ${uid} 1\n`);
  fs.writeFileSync(`/proc/${pid}/gid_map`, `0 ${gid} 1\n`);
}

function start(script: string, opts: { pidns?: boolean; cwd?: string } = {}) {
  return addon.cloneUserns({
    argv: ['/bin/sh', '-c', script],
    env: [`PATH=${process.env.PATH}`, 'MARK=yes'],
    cwd: opts.cwd ?? '/',
    pidns: opts.pidns,
  });
}

test('the child runs as namespace root with the given env and cwd; exit codes come back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-clone-'));
  fs.chmodSync(dir, 0o777);
  try {
    const out = path.join(dir, 'out');
    const c = start(`echo "$(id -u) $MARK $(pwd)" > ${out}; exit 3`, { cwd: dir });
    assert.ok(c.pid > 0);
    mapSelf(c.pid);
    addon.releaseChild(c.syncFd, true);
    assert.equal(await addon.waitpid(c.pid), 3);
    assert.equal(fs.readFileSync(out, 'utf8'), `0 yes ${dir}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the child waits for releaseChild; ok=false makes it exit 1 without running', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-clone-'));
  fs.chmodSync(dir, 0o777);
  try {
    const c = start(`touch ${dir}/ran`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fs.existsSync(path.join(dir, 'ran')), false);
    addon.releaseChild(c.syncFd, false);
    assert.equal(await addon.waitpid(c.pid), 1);
    assert.equal(fs.existsSync(path.join(dir, 'ran')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a signal death resolves to 128+signal', async () => {
  const c = start('kill -9 $$');
  mapSelf(c.pid);
  addon.releaseChild(c.syncFd, true);
  assert.equal(await addon.waitpid(c.pid), 128 + 9);
});

test('pidns: the command is pid 1 of a new pid namespace', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-clone-'));
  fs.chmodSync(dir, 0o777);
  try {
    const c = start(`echo $$ > ${dir}/pid; exit 5`, { pidns: true });
    mapSelf(c.pid);
    addon.releaseChild(c.syncFd, true);
    assert.equal(await addon.waitpid(c.pid), 5);
    assert.equal(fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim(), '1');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing program exits 127 with a message; waitpid of a non-child is ECHILD', async () => {
  const c = addon.cloneUserns({ argv: ['/nonexistent/prog'], env: [], cwd: '/' });
  mapSelf(c.pid);
  addon.releaseChild(c.syncFd, true);
  assert.equal(await addon.waitpid(c.pid), 127);
  await assert.rejects(addon.waitpid(1), { code: 'ECHILD' });
});
