// End-to-end `img build` as the unprivileged user: real user namespace,
// snapshots, runc. Results are checked the way a user would: the exported
// filesystem (-o type=local / type=tar), the stored image's config, `img ls`,
// the progress output (CACHED lines), exit codes and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imgArgv } from '../helpers/cli';
import { cleanup, rootlessUser, runAsUser, runImgRootless } from '../helpers/rootless';
import { makeBusyboxImage } from '../fixtures/images';
import { build, descendants, setup, skip, stepStates, steps, storedConfig } from './helpers';
import { EMPTY_LAYER_DIFF_ID } from '../../lib/export/image';
import { ContentStore } from '../../lib/content/store';

const DOCKERFILE = `FROM busybox
ARG MSG=hi
ENV FOO=bar
COPY a.txt /app/a.txt
RUN echo "$MSG $FOO" > /app/msg && cat /app/a.txt && echo app:x:1234:1234::/app:/bin/sh >> /etc/passwd && mkdir -m 1777 /tmp
WORKDIR /app
USER app
RUN id -u > /tmp/uid && pwd > /tmp/pwd
COPY sub/ /app/sub/
CMD ["cat", "/app/msg"]
`;

test('img build (rootless): RUN, COPY, ARG/ENV, USER/WORKDIR, config in the store, cache and context changes', { skip, timeout: 240_000 }, async (t) => {
  const e = await setup({ Dockerfile: DOCKERFILE, 'a.txt': 'hello\n', 'sub/b.txt': 'B', 'sub/ignored.log': 'x', '.dockerignore': 'sub/*.log\n' });
  t.after(() => cleanup(e.root));

  const first = await build(e, ['-t', 'myimg:1', '--build-arg', 'MSG=howdy', '--iidfile', path.join(e.root, 'iid'), '--metadata-file', path.join(e.root, 'meta.json'), e.ctx]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Successfully built docker\.io\/library\/myimg:1\n$/);
  assert.match(first.stderr, /#\d+ \d+\.\d+ hello/, 'RUN output is shown with its time offset');

  // The image is in the store with the frontend's config and our layers.
  const { manifest, config } = await storedConfig(e, 'docker.io/library/myimg:1');
  assert.ok(config.config?.Env?.includes('FOO=bar'));
  assert.equal(config.config?.WorkingDir, '/app');
  assert.equal(config.config?.User, 'app');
  assert.deepEqual(config.config?.Cmd, ['cat', '/app/msg']);
  assert.equal(config.rootfs.diff_ids.length, manifest.layers.length);
  assert.equal(config.history!.filter((h) => !h.empty_layer).length, manifest.layers.length, 'one non-empty history entry per layer');
  assert.equal(manifest.layers.length, 6, 'busybox + COPY + RUN + WORKDIR (of the existing /app: an empty layer, as BuildKit) + RUN + COPY');
  assert.equal(fs.readFileSync(path.join(e.root, 'iid'), 'utf8'), manifest.config.digest);
  const meta = JSON.parse(fs.readFileSync(path.join(e.root, 'meta.json'), 'utf8'));
  assert.equal(meta['containerimage.config.digest'], manifest.config.digest);
  assert.equal(meta['image.name'], 'docker.io/library/myimg:1');
  const ls = await runImgRootless(['-s', e.state, 'ls']);
  assert.match(ls.stdout, /^myimg:1\s/m);

  // Second build: every step CACHED; the filesystem is what the steps made.
  const out = path.join(e.root, 'out');
  const second = await build(e, ['--build-arg', 'MSG=howdy', '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(second.code, 0, second.stderr);
  const s2 = steps(stepStates(second.stderr));
  assert.equal(s2.length, 6, second.stderr);
  assert.deepEqual(s2.filter(([, st]) => st !== 'CACHED'), [], 'all steps CACHED');
  assert.equal(fs.readFileSync(path.join(out, 'app/msg'), 'utf8'), 'howdy bar\n');
  assert.equal(fs.readFileSync(path.join(out, 'app/a.txt'), 'utf8'), 'hello\n');
  assert.equal(fs.readFileSync(path.join(out, 'tmp/uid'), 'utf8'), '1234\n');
  assert.equal(fs.readFileSync(path.join(out, 'tmp/pwd'), 'utf8'), '/app\n');
  assert.equal(fs.readFileSync(path.join(out, 'app/sub/b.txt'), 'utf8'), 'B');
  assert.ok(!fs.existsSync(path.join(out, 'app/sub/ignored.log')), '.dockerignore applies');

  // Touching a file without changing it keeps everything cached.
  const later = new Date(Date.now() + 10_000);
  fs.utimesSync(path.join(e.ctx, 'a.txt'), later, later);
  const touched = await build(e, ['--build-arg', 'MSG=howdy', '--iidfile', path.join(e.root, 'iid2'), e.ctx]);
  assert.equal(touched.code, 0, touched.stderr);
  assert.equal(fs.readFileSync(path.join(e.root, 'iid2'), 'utf8'), manifest.config.digest, 'a fully cached build yields the same image ID');
  assert.deepEqual(steps(stepStates(touched.stderr)).filter(([, st]) => st !== 'CACHED'), []);

  // Changing sub/b.txt reruns only the last COPY; changing the ignored file reruns nothing.
  fs.writeFileSync(path.join(e.ctx, 'sub/ignored.log'), 'changed');
  fs.writeFileSync(path.join(e.ctx, 'sub/b.txt'), 'B2');
  const changed = await build(e, ['--build-arg', 'MSG=howdy', e.ctx]);
  assert.equal(changed.code, 0, changed.stderr);
  const rerun = steps(stepStates(changed.stderr)).filter(([, st]) => st !== 'CACHED').map(([n]) => n);
  assert.deepEqual(rerun, ['[6/6] COPY sub/ /app/sub/'], changed.stderr);

  // A different build arg reruns the RUN that uses it (and what follows).
  const arg = await build(e, ['--build-arg', 'MSG=other', e.ctx]);
  const rerunArg = steps(stepStates(arg.stderr)).filter(([, st]) => st !== 'CACHED').map(([n]) => n.replace(/ .*/, ''));
  assert.deepEqual(rerunArg, ['[3/6]', '[4/6]', '[5/6]', '[6/6]'], arg.stderr);
});

// BuildKit's WORKDIR: a mkdir -p step (owned by USER) for any path but "/"; on a
// directory that exists it changes nothing, and BuildKit's exporter still
// records a layer for it (the empty tar) with a non-empty history entry.
test('img build (rootless): WORKDIR history and layers as BuildKit: existing dir, new dir under USER, /', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({
    Dockerfile: `FROM busybox
RUN echo app:x:1234:1234::/home/app:/bin/sh >> /etc/passwd && echo app:x:1234: >> /etc/group && mkdir -m 750 /existing
USER app
WORKDIR /existing
WORKDIR /home/app/work
WORKDIR /
`,
  });
  t.after(() => cleanup(e.root));
  const r = await build(e, ['-t', 'wd', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const { manifest, config } = await storedConfig(e, 'docker.io/library/wd:latest');
  const own = (config.history ?? []).slice(1).map((h) => `${h.empty_layer ? 'empty' : 'layer'} ${h.created_by!.replace(/^RUN .*/, 'RUN')}`);
  assert.deepEqual(own, ['layer RUN', 'empty USER app', 'layer WORKDIR /existing', 'layer WORKDIR /home/app/work', 'empty WORKDIR /']);
  const diffIds = config.rootfs.diff_ids;
  assert.equal(manifest.layers.length, 4);
  assert.equal(diffIds.length, 4);
  assert.equal(diffIds[2], EMPTY_LAYER_DIFF_ID, 'WORKDIR of an existing directory: the empty layer');
  assert.deepEqual(
    [manifest.layers[2].digest, manifest.layers[2].size],
    ['sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1', 32],
    "the empty layer is BuildKit's blob, byte for byte",
  );
  assert.notEqual(diffIds[3], EMPTY_LAYER_DIFF_ID, 'WORKDIR of a new directory: a layer holding it');

  const tarFile = path.join(e.root, 'rootfs.tar');
  const x = await build(e, ['-o', `type=tar,dest=${tarFile}`, e.ctx]);
  assert.equal(x.code, 0, x.stderr);
  const entries = execFileSync('tar', ['--numeric-owner', '-tvf', tarFile], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => / (existing|home\S*)\/?$/.test(l))
    .map((l) => l.split(/\s+/))
    .map((f) => `${f[5].replace(/\/$/, '')} ${f[0]} ${f[1]}`)
    .sort();
  assert.deepEqual(entries, [
    'existing drwxr-x--- 0/0',
    'home drwxr-xr-x 1234/1234',
    'home/app drwxr-xr-x 1234/1234',
    'home/app/work drwxr-xr-x 1234/1234',
  ], 'an existing directory keeps its owner and mode; created ones belong to USER');
});

test('img build (rootless): multi-stage to a rootfs tar on stdout; Dockerfile on stdin; failures name the step', { skip, timeout: 240_000 }, async (t) => {
  const e = await setup({
    Dockerfile: `FROM busybox AS builder
RUN mkdir /out && echo built > /out/artifact
FROM busybox AS unused
RUN exit 1
FROM scratch
COPY --from=builder /out/artifact /artifact
`,
  });
  t.after(() => cleanup(e.root));
  const tarFile = path.join(e.root, 'rootfs.tar');
  const cmd = imgArgv(['-s', e.state, 'build', '--progress', 'plain', '-o', 'type=tar', e.ctx]).map((a) => `'${a}'`).join(' ');
  const r = await runAsUser(['sh', '-c', `${cmd} > ${tarFile}`]);
  assert.equal(r.code, 0, r.stderr);
  const listing = execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).split('\n').filter(Boolean);
  assert.deepEqual(listing, ['artifact']);
  assert.equal(execFileSync('tar', ['-xOf', tarFile, 'artifact'], { encoding: 'utf8' }), 'built\n');
  assert.ok(!/\[unused/.test(r.stderr), 'stages the target does not need are not built');
  assert.match(r.stderr, /Successfully built/, 'messages move to stderr when stdout carries the tar');

  // A reader that stops early (`| head -c 100`): a message and a failed build, not a crash.
  // The builder stage's rootfs (busybox, ~2 MB) is more than the pipe holds.
  const errFile = path.join(e.root, 'cut.err');
  const cutCmd = imgArgv(['-s', e.state, 'build', '-q', '--target', 'builder', '-o', '-', e.ctx]).map((a) => `'${a}'`).join(' ');
  const cut = await runAsUser(['sh', '-c', `{ ${cutCmd} 2>${errFile}; echo "exit $?" >&2; } | head -c 100 >/dev/null`]);
  assert.match(cut.stderr, /^exit [1-9]/m, 'the build fails');
  assert.equal(
    fs.readFileSync(errFile, 'utf8'),
    "Error: cannot write to stdout (--output type=tar): its reader closed the pipe before the archive was complete (EPIPE) — the command reading img's output exited early; check it, or pass dest=FILE in --output\n",
  );

  // Dockerfile on stdin with no context.
  const stdin = await build(e, ['-t', 'fromstdin', '-'], { input: 'FROM busybox\nRUN echo from-stdin > /x\n' });
  assert.equal(stdin.code, 0, stdin.stderr);
  assert.match(stdin.stdout, /Successfully built docker\.io\/library\/fromstdin:latest/);
  // Any command's reader stopping early (more JSON than a pipe holds, read by `head`): a quiet
  // exit with 141, as a Go CLI killed by SIGPIPE, no stack trace.
  const many = imgArgv(['-s', e.state, 'inspect', ...Array(100).fill('fromstdin')]).map((a) => `'${a}'`).join(' ');
  const quiet = await runAsUser(['sh', '-c', `{ ${many} 2>&1; echo "exit $?" >&2; } | head -c 10 >/dev/null`]);
  assert.equal(quiet.stderr, 'exit 141\n');

  // A failing RUN: exit status, command and its output are reported.
  const bad = await build(e, ['-'], { input: 'FROM busybox\nRUN echo about-to-fail && exit 3\n' });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /process "\/bin\/sh -c echo about-to-fail && exit 3" did not complete successfully: exit code: 3/);
  assert.match(bad.stderr, /------\n > \[2\/2\] RUN echo about-to-fail && exit 3:\n\d+\.\d{3} about-to-fail\n------/);
});

test('img build (rootless): a SIGKILLed build leaves a state the next build reuses', { skip, timeout: 240_000 }, async (t) => {
  const e = await setup({
    Dockerfile: `FROM busybox
RUN echo one > /one
ARG SLEEP=0
RUN echo start-sleep && sleep $SLEEP && echo two > /two
`,
  });
  t.after(() => cleanup(e.root));
  const u = rootlessUser()!;
  const argv = imgArgv(['-s', e.state, 'build', '--progress', 'plain', '--build-arg', 'SLEEP=60', e.ctx]);
  const full = process.getuid?.() === 0 ? ['runuser', '-u', u.name, '--', 'env', `HOME=${e.root}`, `XDG_RUNTIME_DIR=${e.root}`, ...argv] : argv;
  const child = spawn(full[0], full.slice(1), { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`build never reached the sleep:\n${err}`)), 60_000);
    child.stderr.on('data', (d) => {
      err += d;
      if (/ start-sleep/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  // Kill every process of this build by id: the group, plus descendants that
  // left it (runc puts the step in its own session).
  const pids = descendants(child.pid!);
  process.kill(-child.pid!, 'SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await new Promise((r) => child.once('close', r));
  assert.match(err, /\[2\/3\] RUN echo one > \/one\n#\d+ DONE/);

  const again = await build(e, ['--build-arg', 'SLEEP=0', '-t', 'afterkill', e.ctx]);
  assert.equal(again.code, 0, again.stderr);
  const st = stepStates(again.stderr);
  assert.equal(st.get('[2/3] RUN echo one > /one'), 'CACHED', again.stderr);
  assert.equal(st.get('[3/3] RUN echo start-sleep && sleep 0 && echo two > /two'), 'DONE', again.stderr);
});

test('img build (rootless): base image from a registry, concurrent builds sharing one state dir, docker tar output, --no-cache', { skip, timeout: 300_000 }, async (t) => {
  const { startRegistry } = await import('../fixtures/registry');
  const reg = await startRegistry();
  t.after(() => reg.stop());
  await reg.seed('library/bbox', 'v1', await makeBusyboxImage({ extraFiles: { 'etc/from-registry': 'yes\n' } }));
  const e = await setup({
    Dockerfile: `FROM ${reg.host}/library/bbox:v1
RUN cat /etc/from-registry > /copied && sleep 1
RUN echo second > /second
`,
  });
  t.after(() => cleanup(e.root));

  // Two builds at once on one state dir: both succeed; the shared steps run once
  // (the other process waits on the per-key lock, then reuses the result).
  const [a, b] = await Promise.all([build(e, ['-t', 'one', e.ctx]), build(e, ['-t', 'two', e.ctx])]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const ran = (s: string) => steps(stepStates(s)).filter(([n, st]) => n.startsWith('[2/3]') && st === 'DONE').length;
  assert.equal(ran(a.stderr) + ran(b.stderr), 1, `${a.stderr}\n----\n${b.stderr}`);
  assert.match(a.stderr + b.stderr, /^#\d+ sha256:[0-9a-f]{64} \S+ \/ \S+ \d+\.\ds done$/m, 'the pull shows its blobs');
  const one = await storedConfig(e, 'docker.io/library/one:latest');
  const two = await storedConfig(e, 'docker.io/library/two:latest');
  assert.deepEqual(one.config.rootfs.diff_ids, two.config.rootfs.diff_ids);
  assert.equal(one.manifest.layers.length, 3);

  // -o type=docker: a `docker load`-able archive that skopeo reads.
  const tarFile = path.join(e.root, 'image.tar');
  const d = await build(e, ['-t', 'three', '-o', `type=docker,dest=${tarFile}`, e.ctx]);
  assert.equal(d.code, 0, d.stderr);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${tarFile}`], { encoding: 'utf8' }));
  assert.deepEqual(inspect.rootfs.diff_ids, one.config.rootfs.diff_ids);

  // --no-cache reruns every step.
  const nc = await build(e, ['--no-cache', e.ctx]);
  assert.equal(nc.code, 0, nc.stderr);
  assert.deepEqual(steps(stepStates(nc.stderr)).filter(([, st]) => st === 'CACHED'), []);
});

test('img build: unsupported flags and bad input are clear errors', { skip, timeout: 60_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\n' });
  t.after(() => cleanup(e.root));
  const cf = await build(e, ['--cache-from', 'type=gha,scope=x', e.ctx]);
  assert.equal(cf.code, 1);
  assert.match(cf.stderr, /^Error: --cache-from type=gha is not supported by img/m);
  const ct = await build(e, ['--cache-to', 'type=registry,ref=r.io/a:c,compresion=zstd', e.ctx]);
  assert.match(ct.stderr, /^Error: --cache-to type=registry does not support the option "compresion"/m);
  // The stored busybox is amd64 only: no s390x build on it.
  const plat = await build(e, ['--platform', 'linux/s390x', e.ctx]);
  assert.equal(plat.code, 1);
  assert.match(plat.stderr, /Error: .*image docker\.io\/library\/busybox:latest is for linux\/amd64 only, not linux\/s390x — build for linux\/amd64 \(--platform\), or use a base image that has linux\/s390x/);
  const missing = await build(e, [path.join(e.root, 'nope')]);
  assert.match(missing.stderr, /unable to prepare context: path ".*nope" not found/);
  const out = await build(e, ['-o', 'type=bogus', e.ctx]);
  assert.match(out.stderr, /unknown --output type "bogus"/);
});

test('img build (rootless): RUN --mount secret/cache/bind, ADD from http, --build-context', { skip, timeout: 240_000 }, async (t) => {
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    if (req.url === '/file.txt') {
      res.setHeader('Last-Modified', 'Sat, 03 Feb 2001 04:05:06 GMT');
      res.end('from-http\n');
    } else if (req.url === '/undated.txt') res.end('undated\n');
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const e = await setup({
    Dockerfile: `FROM busybox AS tools
RUN echo tool > /tool
FROM busybox
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /got-secret
RUN --mount=type=cache,target=/cache echo x >> /cache/f && wc -l < /cache/f > /count
RUN --mount=type=bind,from=tools,source=/tool,target=/mnt/tool cat /mnt/tool > /from-bind
ADD http://127.0.0.1:${port}/file.txt /downloaded.txt
ADD http://127.0.0.1:${port}/undated.txt /undated.txt
COPY --from=extra hello.txt /extra.txt
`,
    'secret.txt': 's3cr3t',
    'extra/hello.txt': 'extra-context\n',
  });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const args = ['--secret', `id=tok,src=${path.join(e.ctx, 'secret.txt')}`, '--build-context', `extra=${path.join(e.ctx, 'extra')}`];
  const r = await build(e, [...args, '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const read = (p: string) => fs.readFileSync(path.join(out, p), 'utf8');
  assert.equal(read('got-secret'), 's3cr3t');
  assert.ok(!fs.existsSync(path.join(out, 'run/secrets/tok')), 'the secret is not in the image');
  assert.equal(read('count').trim(), '1');
  assert.equal(read('from-bind'), 'tool\n');
  assert.ok(!fs.existsSync(path.join(out, 'mnt/tool')) || fs.statSync(path.join(out, 'mnt/tool')).size === 0);
  assert.equal(read('downloaded.txt'), 'from-http\n');
  const stamp = (p: string) => [fs.statSync(path.join(out, p)).mtime.toISOString(), (fs.statSync(path.join(out, p)).mode & 0o777).toString(8)];
  assert.deepEqual([stamp('downloaded.txt'), stamp('undated.txt')], [['2001-02-03T04:05:06.000Z', '600'], ['1970-01-01T00:00:00.000Z', '600']], 'ADD of a URL: 0600, dated Last-Modified or the epoch (BuildKit)');
  assert.equal(read('extra.txt'), 'extra-context\n');

  // The cache mount persists across builds (--no-cache reruns the step on the same dir).
  const out2 = path.join(e.root, 'out2');
  const r2 = await build(e, [...args, '--no-cache', '-o', `type=local,dest=${out2}`, e.ctx]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(fs.readFileSync(path.join(out2, 'count'), 'utf8').trim(), '2');
});

test('img build (rootless): context from a tar on stdin and from an http tarball; -f names a Dockerfile inside', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({ 'df/Build.df': 'FROM busybox\nCOPY msg.txt /msg.txt\n', 'msg.txt': 'tarred\n' });
  t.after(() => cleanup(e.root));
  const tarGz = path.join(e.root, 'ctx.tar.gz');
  execFileSync('tar', ['-czf', tarGz, '-C', e.ctx, '.']);
  const out = path.join(e.root, 'out-stdin');
  const cmd = imgArgv(['-s', e.state, 'build', '--progress', 'plain', '-f', 'df/Build.df', '-o', `type=local,dest=${out}`, '-']).map((a) => `'${a}'`).join(' ');
  const r = await runAsUser(['sh', '-c', `${cmd} < ${tarGz}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'msg.txt'), 'utf8'), 'tarred\n');

  const http = await import('node:http');
  const server = http.createServer((_req, res) => fs.createReadStream(tarGz).pipe(res));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => server.close(() => ok())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ctx.tar.gz`;
  const out2 = path.join(e.root, 'out-http');
  const r2 = await build(e, ['-f', 'df/Build.df', '-o', `type=local,dest=${out2}`, url]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(fs.readFileSync(path.join(out2, 'msg.txt'), 'utf8'), 'tarred\n');
});

// Directories overlayfs only copied up (a file made and removed under /etc, a mount point
// under it made and removed for the step) are not changes: as in BuildKit's layers, such a
// step's layer is the empty tar, and a new file's layer holds its directory as its parent only.
test('img build (rootless): a layer holds no directory copied up unchanged, as BuildKit', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({
    Dockerfile: `FROM busybox
RUN touch /etc/x && rm /etc/x
RUN --mount=type=tmpfs,target=/etc/scratch/deep true
RUN mkdir /etc/app && echo on > /etc/app/conf && touch /bin/y && rm /bin/y
`,
  });
  t.after(() => cleanup(e.root));
  const r = await build(e, ['-t', 'copyup', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const { manifest, config } = await storedConfig(e, 'docker.io/library/copyup:latest');
  const diffIds = config.rootfs.diff_ids.slice(-3);
  assert.deepEqual(diffIds.slice(0, 2), [EMPTY_LAYER_DIFF_ID, EMPTY_LAYER_DIFF_ID], 'made-and-removed file, mount point: the empty layer');
  const blob = new ContentStore(e.state).blobPath(manifest.layers[manifest.layers.length - 1].digest);
  const names = execFileSync('tar', ['-tzf', blob], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(names, ['etc/', 'etc/app/', 'etc/app/conf'], 'no bin/ entry; etc/ as the new directory\'s parent');
});
