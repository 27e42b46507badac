// What a user sees when the input is odd or hostile: bytes that are terminal
// commands, paths that cannot hold a directory, flags without values. Builds
// run as the unprivileged user, FROM scratch (no RUN succeeds there, none needs to).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import type { ImageConfig, Index, Manifest } from '../../lib/images/types';

const skip = skipUnlessRootless();
// Anything a terminal obeys instead of printing (tab and newline aside).
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

function setup(files: Record<string, string | Buffer>): { root: string; state: string; ctx: string } {
  const root = tempDir('img-untrusted-');
  const ctx = path.join(root, 'ctx');
  fs.mkdirSync(ctx);
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(ctx, name), data);
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${fs.statSync(root).uid}:${fs.statSync(root).gid}`, root]);
  return { root, state: path.join(root, 'state'), ctx };
}

// The image config inside an OCI archive written by -o type=oci.
function ociConfig(tarFile: string): ImageConfig {
  const read = (member: string): string => execFileSync('tar', ['-xOf', tarFile, member], { encoding: 'utf8' });
  const index = JSON.parse(read('index.json')) as Index;
  const manifest = JSON.parse(read(`blobs/sha256/${index.manifests[0].digest.slice(7)}`)) as Manifest;
  return JSON.parse(read(`blobs/sha256/${manifest.config.digest.slice(7)}`)) as ImageConfig;
}

test('--build-arg NAME takes the value from the environment (skipped when unset); --label NAME is an empty label', { skip, timeout: 120_000 }, async (t) => {
  const e = setup({ Dockerfile: 'FROM scratch\nARG FROM_ENV\nARG UNSET_ARG=default\nARG EMPTY\nLABEL a=$FROM_ENV b=$UNSET_ARG c=x$EMPTY\n' });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'image.tar');
  const r = await runImgRootless(
    ['-s', e.state, 'build', '--progress', 'plain', '--build-arg', 'FROM_ENV', '--build-arg', 'UNSET_ARG', '--build-arg', 'EMPTY=',
      '--label', 'novalue', '--label', 'k=v=w', '-o', `type=oci,dest=${out}`, e.ctx],
    { env: { FROM_ENV: 'from the environment' } },
  );
  assert.equal(r.code, 0, r.stderr);
  const config = ociConfig(out);
  assert.deepEqual(config.config?.Labels, { a: 'from the environment', b: 'default', c: 'x', novalue: '', k: 'v=w' });
  assert.deepEqual(
    config.history?.map((h) => h.created_by),
    ['ARG FROM_ENV=from the environment', 'ARG UNSET_ARG=default', 'ARG EMPTY=', 'LABEL a=from the environment b=default c=x'],
  );
});

test('control characters from a Dockerfile reach the terminal as escapes: a file of hostile bytes, a NUL in RUN', { skip, timeout: 120_000 }, async (t) => {
  const hostile = Buffer.concat([
    Buffer.from('\x1b]0;owned\x07\x1b[2J\x1b[H'), // retitle, clear, home
    Buffer.from([0xc2, 0x9b, 0x33, 0x4a]), // C1 CSI (U+009B) "3J": clear scrollback
    Buffer.from('\x00\x08\x7f\u202eFROM scratch\n'),
  ]);
  const e = setup({ Dockerfile: hostile, 'Dockerfile.run': 'FROM scratch\nRUN echo \x00hi\x1b[2J\n' });
  t.after(() => cleanup(e.root));

  const bad = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', e.ctx]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.doesNotMatch(bad.stderr + bad.stdout, RAW_CONTROL, JSON.stringify(bad.stderr));
  assert.match(bad.stderr, /^Error: Dockerfile:1: unknown instruction: \\x1b\]0;owned\\x07\\x1b\[2J\\x1b\[H\\u009b3J\\x00\\x08\\x7f\\u202eFROM/m);

  const run = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', '-f', path.join(e.ctx, 'Dockerfile.run'), e.ctx]);
  assert.equal(run.code, 1, run.stderr);
  assert.doesNotMatch(run.stderr + run.stdout, RAW_CONTROL, JSON.stringify(run.stderr));
  assert.match(run.stderr, /^#\d+ \[1\/1\] RUN echo \\x00hi\\x1b\[2J$/m, 'the step line');
  assert.match(run.stderr, /^ERROR: failed to solve: process "\/bin\/sh -c echo \\x00hi\\x1b\[2J"/m, 'the error, as BuildKit words it');
  assert.match(run.stderr, /^ {3}2 \| >>> RUN echo \\x00hi\\x1b\[2J$/m, 'the Dockerfile line under the failure');
});

test('a path where no directory can be made (/proc, /sys, under a file) is a clear error, never a spinning mkdir', { skip, timeout: 120_000 }, async (t) => {
  const e = setup({ Dockerfile: 'FROM scratch\nLABEL a=b\n', file: 'x' });
  t.after(() => cleanup(e.root));
  const underFile = path.join(e.ctx, 'file', 'sub');
  const cases: [string[], RegExp][] = [
    [['-s', '/proc/x', 'build', e.ctx], /^Error: cannot create state directory \(--state\) \/proc\/x: \/proc does not hold new directories — .*choose a path on a disk/m],
    [['-s', underFile, 'unpack', 'busybox'], new RegExp(`^Error: cannot create state directory \\(--state\\) ${underFile}: a part of the path is a file, not a directory`, 'm')],
    [['-s', e.state, 'unpack', '-o', '/proc/x', 'busybox'], /^Error: cannot create output directory \(-o, --output\) \/proc\/x: \/proc does not hold new directories/m],
    [['-s', e.state, 'build', '-o', 'type=local,dest=/proc/x/out', e.ctx], /^Error: cannot create directory for --output type=local dest \/proc\/x: \/proc does not hold new directories/m],
    [['-s', e.state, 'build', '--iidfile', '/proc/x/iid', e.ctx], /^Error: cannot create directory for --iidfile \/proc\/x/m],
    [['-s', e.state, 'build', '--metadata-file', '/sys/kernel/x/m.json', e.ctx], /^Error: cannot create directory for --metadata-file \/sys\/kernel\/x: permission denied/m],
  ];
  // A hang would be killed at the timeout and fail here.
  const runs = await Promise.all(cases.map(([args]) => runImgRootless(args, { timeoutMs: 30_000 })));
  cases.forEach(([args, want], i) => {
    assert.equal(runs[i].code, 1, `${args.join(' ')}: ${runs[i].stderr}`);
    assert.match(runs[i].stderr, want, args.join(' '));
  });
  assert.ok(!fs.existsSync(e.state) || !fs.existsSync(path.join(e.state, 'snapshots')), 'nothing was built: the destinations are checked first');
});

test('an output destination that cannot be written is named before the build starts (was: "already finalized or destroyed")', { skip, timeout: 120_000 }, async (t) => {
  const e = setup({ Dockerfile: 'FROM scratch\nLABEL a=b\n' });
  t.after(() => cleanup(e.root));
  const locked = path.join(e.root, 'locked');
  fs.mkdirSync(locked);
  fs.chmodSync(locked, 0o555);
  if (process.getuid?.() === 0) fs.chownSync(locked, 0, 0); // not the build user's
  const cases = [
    [['-o', `type=oci,dest=${locked}/image.tar`], `--output type=oci dest ${locked}/image.tar`],
    [['-o', `type=local,dest=${locked}`], `--output type=local dest ${locked}`],
    [['--iidfile', `${locked}/iid`], `--iidfile ${locked}/iid`],
  ] as const;
  const runs = await Promise.all(cases.map(([args]) => runImgRootless(['-s', e.state, 'build', '--progress', 'plain', ...args, e.ctx], { timeoutMs: 60_000 })));
  cases.forEach(([, what], i) => {
    const r = runs[i];
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`Error: cannot write ${what}: permission denied — choose a path you may write to, or fix the permissions\n`), r.stderr);
    assert.doesNotMatch(r.stderr, /finalized|destroyed|load build definition/, 'the error comes before any step');
  });
  assert.deepEqual(fs.readdirSync(locked), [], 'no probe file left behind');
});

// Another user's file (root's, mode 0600): the user cannot read it, nor can img in the user's
// namespace, where root is not mapped.
test('a context file the user cannot read: BuildKit\'s "error from sender" naming it, and the way out; .dockerignore leaves it out', { skip: skip || (process.getuid?.() !== 0 && 'needs root to make a file of another user'), timeout: 120_000 }, async (t) => {
  const e = setup({ Dockerfile: 'FROM scratch\nCOPY . /app\n', 'readable.txt': 'ok\n', 'locked.txt': 'secret\n' });
  t.after(() => cleanup(e.root));
  fs.chownSync(path.join(e.ctx, 'locked.txt'), 0, 0);
  fs.chmodSync(path.join(e.ctx, 'locked.txt'), 0o600);
  const r = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', e.ctx]);
  assert.notEqual(r.code, 0, r.stderr);
  assert.ok(
    r.stderr.includes(`ERROR: failed to solve: error from sender: open ${path.join(e.ctx, 'locked.txt')}: permission denied — make it readable by you, or leave it out of the build with .dockerignore\n`),
    r.stderr,
  );
  fs.writeFileSync(path.join(e.ctx, '.dockerignore'), 'locked.txt\n');
  const out = path.join(e.root, 'rootfs');
  const ok = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(fs.readdirSync(path.join(out, 'app')).sort(), ['.dockerignore', 'Dockerfile', 'readable.txt']);
});
