// --state given as a relative path (`img --state ./state build .`, as in a CI job's
// workspace): a RUN step still finds the files img binds into it (resolv.conf, hosts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import { makeBusyboxImage } from '../fixtures/images';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await cleanup(d);
});

describe('a relative --state', { skip: skipUnlessRootless() }, () => {
  it('builds a RUN step', { timeout: 120_000 }, async () => {
    const work = tempDir('img-relstate-');
    dirs.push(work);
    const state = path.join(work, 'state');
    const base = await makeBusyboxImage();
    await base.writeToStore(state, 'base');
    const ctx = path.join(work, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM base\nRUN cat /etc/resolv.conf > /dev/null && echo ran > /ran\n');
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, work]);
    const r = await runImgRootless(['--state', 'state', 'build', '-t', 'rel', 'ctx'], { cwd: work, timeoutMs: 100_000 });
    assert.equal(r.code, 0, r.stderr);
    const ls = await runImgRootless(['--state', './state', 'ls'], { cwd: work });
    assert.match(ls.stdout, /^rel:latest\s/m);
  });
});
