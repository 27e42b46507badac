// An inline cache in a multi-platform image, as the user sees it: a linux/amd64 +
// linux/arm64 build pushed with --cache-to type=inline puts each platform's records in
// its image; a fresh state building for linux/arm64 alone (on an amd64 host), or for
// both, with --cache-from that index finds every step CACHED — the index's images are
// all read, as BuildKit's importer reads them, not the host platform's alone. No RUN:
// nothing arm64 executes, so no emulation is needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUSYBOX_ARM64, makeMultiArchBusybox } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import { stepStates, steps } from '../builder/helpers';

const skip = skipUnlessRootless() || (!fs.existsSync(BUSYBOX_ARM64) && `no arm64 busybox at ${BUSYBOX_ARM64} (.ci/setup-host unpacks it)`);

describe('--cache-from a multi-platform image with inline caches', { skip, timeout: 300_000 }, () => {
  let reg: Registry;
  let root: string;
  let ctx: string;
  const build = async (state: string, args: string[]) => {
    const res = await runImgRootless(['-s', path.join(root, state), 'build', '--progress', 'plain', ...args, ctx], { timeoutMs: 240_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stderr, /cannot import cache/, res.stderr);
    return steps(stepStates(res.stderr));
  };

  before(async () => {
    reg = await startRegistry();
    await reg.seed('library/busybox', 'latest', await makeMultiArchBusybox());
    root = tempDir('img-cache-multi-');
    ctx = path.join(root, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${reg.host}/library/busybox\nENV FOO=bar\nWORKDIR /app\nCOPY a.txt /app/a.txt\n`);
    fs.writeFileSync(path.join(ctx, 'a.txt'), 'a\n');
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, ctx]);
  });
  after(async () => {
    await reg?.stop();
    if (root) await cleanup(root);
  });

  it('pushes both platforms with their records; linux/arm64 alone, then both, are all CACHED from it', async () => {
    const first = await build('a', ['--platform', 'linux/amd64,linux/arm64', '--cache-to', 'type=inline', '--push', '-t', `${reg.host}/app:multi`]);
    assert.ok(first.some(([, s]) => s === 'DONE'));

    const arm = await build('b', ['--platform', 'linux/arm64', '--cache-from', `${reg.host}/app:multi`, '-t', 'x/app']);
    const armSteps = arm.filter(([n]) => !/ FROM |internal\]/.test(n));
    assert.deepEqual(armSteps.map(([n]) => n).sort(), ['[2/3] WORKDIR /app', '[3/3] COPY a.txt /app/a.txt']);
    assert.ok(armSteps.every(([, s]) => s === 'CACHED'), JSON.stringify(arm));

    const both = await build('c', ['--platform', 'linux/amd64,linux/arm64', '--cache-from', `${reg.host}/app:multi`, '-t', 'x/app2']);
    const bothSteps = both.filter(([n]) => !/ FROM |internal\]/.test(n));
    assert.equal(bothSteps.length, 4);
    assert.ok(bothSteps.every(([, s]) => s === 'CACHED'), JSON.stringify(both));
  });
});
