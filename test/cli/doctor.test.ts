// img doctor on this host: as the unprivileged user (full and single-id
// mappings, an unwritable state dir), as root, and its flags. The pod
// variants (masked /proc, refused helpers, no ranges) are in test/containers.
import { checkEmulation } from '../../lib/exec/binfmt';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { runImg } from '../helpers/cli';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

interface Report {
  checks: { id: string; title: string; status: string; found: string; cost?: string; fix?: string }[];
  verdict: { builds: boolean; mapping: string; backend: string; proc: string };
}
const row = (r: Report, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no ${id} row in ${JSON.stringify(r.checks.map((x) => x.id))}`);
  return c;
};

describe('img doctor', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });
  const state = () => {
    const d = tempDir('img-doctor-');
    dirs.push(d);
    return d;
  };

  it('as the unprivileged user: subordinate ranges, fresh /proc, overlayfs, runc — in a table and as JSON', { skip: skipUnlessRootless() }, async () => {
    const u = rootlessUser()!;
    const st = state();
    const table = await runImgRootless(['--state', st, 'doctor'], { timeoutMs: 60_000 });
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stderr, '', 'nothing but the table');
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^CHECK\t+STATUS\t+FOUND$/);
    assert.equal(lines.at(-1), 'img can build here: mapping subordinate ranges, backend overlayfs, /proc fresh');
    assert.ok(lines.some((l) => new RegExp(`^id mapping\\t+ok\\t+subordinate ranges: uid 0→${u.uid}, 1-65536→${u.subuidStart}-`).test(l)), table.stdout);

    const json = await runImgRootless(['--state', st, 'doctor', '--format', 'json'], { timeoutMs: 60_000 });
    assert.equal(json.code, 0, json.stderr);
    const r = JSON.parse(json.stdout) as Report;
    assert.deepEqual(r.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'fresh' });
    assert.deepEqual(
      r.checks.map((c) => c.id),
      ['kernel', 'addon', 'userns', 'subids', 'helpers', 'mapping', 'entry', 'proc', 'overlayfs', 'fuse', 'backend', 'runc', 'cgroups', 'binfmt', 'state', 'credentials'],
    );
    for (const id of ['userns', 'subids', 'mapping', 'proc', 'overlayfs', 'backend', 'runc', 'state']) assert.equal(row(r, id).status, 'ok', JSON.stringify(row(r, id)));
    assert.match(row(r, 'subids').found, new RegExp(`${u.name}:${u.subuidStart}:65536`));
    // The namespaced trials report the entry record of lib/exec/entry.ts.
    assert.match(row(r, 'entry').found, /: mapping subids \(the subordinate ranges of /);
    assert.match(row(r, 'runc').found, /^\d+\.\d+\.\d+\S*: a trial container ran/);
    // .ci/setup-host registers QEMU's handlers: the row names what runs emulated.
    const arm64 = checkEmulation('arm64');
    if (arm64.ok) assert.match(row(r, 'binfmt').found, new RegExp(`^RUN emulated for arm64 \\(${arm64.handler.name}\\)`));
    assert.match(row(r, 'state').found, new RegExp(`^${st} on \\w+: [\\d.]+\\w+ free, d_type yes, reflink (yes|no)$`));
    assert.match(row(r, 'credentials').found, /config\.json: no logins/);
  });

  it('without subordinate ranges: single-id mapping, what it costs and the usermod line that fixes it', { skip: skipUnlessRootless() }, async () => {
    const u = rootlessUser()!;
    const res = await runImgRootless(['--state', state(), 'doctor', '--format', 'json'], {
      timeoutMs: 60_000,
      env: { IMG_SUBUID_FILE: '/dev/null', IMG_SUBGID_FILE: '/dev/null' },
    });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout) as Report;
    assert.equal(r.verdict.mapping, 'single id');
    assert.equal(r.verdict.builds, true);
    const subids = row(r, 'subids');
    assert.equal(subids.status, 'warn');
    assert.equal(subids.fix, `as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${u.name}`);
    const mapping = row(r, 'mapping');
    assert.equal(mapping.status, 'warn');
    assert.equal(mapping.found, `single id: uid 0→${u.uid}; gid 0→${u.gid}`);
    assert.match(mapping.cost!, /a RUN step cannot give files to other ids .*; owners in base images and COPY --chown are kept/);
  });

  it('an unwritable state dir fails (exit 1) and names the directory and the fix', { skip: skipUnlessRootless() }, async () => {
    const res = await runImgRootless(['--state', '/proc/img-state', 'doctor'], { timeoutMs: 60_000 });
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /^state dir\t+fail\t+\/proc\/img-state: not writable \(EACCES\)$/m);
    assert.match(res.stdout, /fix: use a writable directory: --state DIR/);
    assert.match(res.stdout, /^runc\t+info\t+not tried: the state dir is not writable$/m);
    assert.match(res.stdout.trimEnd().split('\n').at(-1)!, /^img cannot build here: state dir/);
  });

  it('as root: no mapping needed, every trial run directly', { skip: process.getuid?.() === 0 ? false : 'needs root (CI runs the suite as root)' }, async () => {
    const st = tempDir('img-doctor-root-');
    dirs.push(st);
    const res = await runImg(['--state', st, 'doctor', '--format', 'json']);
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout) as Report;
    assert.deepEqual(r.verdict, { builds: true, mapping: 'none (root)', backend: 'overlayfs', proc: 'fresh' });
    assert.equal(row(r, 'userns').found, 'not needed: running as root');
    assert.equal(row(r, 'runc').status, 'ok');
  });

  it('--format other than table/json is a usage error; -h in img\'s layout', async () => {
    const bad = await runImg(['doctor', '--format', 'yaml']);
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr, 'Error: unknown format "yaml" — use --format table or --format json\n');
    const help = await runImg(['doctor', '-h'], { env: { XDG_DATA_HOME: '/home/user/.local/share' } });
    assert.equal(help.code, 0);
    const lines = help.stdout.split('\n');
    assert.equal(lines[0], 'doctor -  Check what this environment allows img to do.');
    assert.equal(lines[2], 'Usage: img doctor [OPTIONS]');
    assert.ok(lines.includes('      --format string   output format (table|json) (default "table")'), help.stdout);
  });
});
