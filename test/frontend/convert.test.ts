// COPY/ADD, RUN (heredocs, mounts, network/security) and the build context
// source, plus snapshot tests of whole multi-stage graphs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecVertex, FileVertex, FileAction, LocalSourceVertex, HttpSourceVertex, GitSourceVertex } from '../../lib/graph/types';
import { build, chain, history, input, named, rejects, root, shape, snapshot, vertices } from './graphs/helpers';
import { vertexDigest } from '../../lib/graph/digest';

type CopyAction = Extract<FileAction, { op: 'copy' }>;
const copies = (v: FileVertex): CopyAction[] => v.actions.filter((a): a is CopyAction => a.op === 'copy');

test('COPY from the context: one context source with include/exclude patterns', async () => {
  const df = 'FROM busybox\nWORKDIR /app\nCOPY package.json yarn.lock ./\nCOPY src/ ./src/\nCOPY *.md docs/\n';
  const g = await build(df, { dockerignore: ['node_modules', '**/*.log'] });
  const ctx = vertices(g).filter((v): v is LocalSourceVertex => v.kind === 'local');
  assert.equal(ctx.length, 1);
  assert.equal(ctx[0].name, '[internal] load build context');
  assert.equal(ctx[0].source, 'context');
  assert.deepEqual(ctx[0].includePatterns, ['*.md', 'package.json', 'src', 'yarn.lock']);
  assert.deepEqual(ctx[0].excludePatterns, ['node_modules', '**/*.log']);
  const c = named(g, 'COPY package.json') as FileVertex;
  assert.equal(c.name, '[3/5] COPY package.json yarn.lock ./');
  assert.deepEqual(copies(c).map((a) => [a.srcPaths, a.dest]), [[['/package.json'], '/app/'], [['/yarn.lock'], '/app/']]);
  const a = copies(c)[0];
  assert.equal(input(g, c, a.src).id, ctx[0].id);
  assert.deepEqual(
    { follow: a.followSymlinks, contents: a.dirCopyContents, create: a.createDestPath, wild: a.allowWildcard, empty: a.allowEmptyWildcard, unpack: a.attemptUnpack },
    { follow: true, contents: true, create: true, wild: true, empty: true, unpack: false },
  );
  assert.deepEqual(copies(named(g, 'COPY *.md') as FileVertex)[0].dest, '/app/docs/');
});

test('COPY . includes the whole context', async () => {
  const g = await build('FROM busybox\nCOPY . /src\nCOPY a.txt /a\n');
  const ctx = vertices(g).find((v): v is LocalSourceVertex => v.kind === 'local')!;
  assert.equal(ctx.includePatterns, undefined);
  assert.equal(copies(root(g) as FileVertex)[0].dest, '/a');
});

test('COPY destination rules', async () => {
  const g = await build('FROM busybox\nWORKDIR /w\nCOPY a rel\nCOPY b .\nCOPY c /abs/dir/\nCOPY d ../up\n');
  assert.equal(copies(named(g, 'COPY a') as FileVertex)[0].dest, '/w/rel');
  assert.equal(copies(named(g, 'COPY b') as FileVertex)[0].dest, '/w/');
  assert.equal(copies(named(g, 'COPY c') as FileVertex)[0].dest, '/abs/dir/');
  assert.equal(copies(named(g, 'COPY d') as FileVertex)[0].dest, '/up');
  await rejects(
    build('FROM busybox\nRUN true\nCOPY a b /dest\n'),
    /When using COPY with more than one source file, the destination must be a directory and end with a \//,
    3,
  );
  await rejects(build('FROM busybox\nADD a b /dest\n'), /When using ADD with more than one source file/, 2);
  await rejects(build('FROM busybox\nCOPY onlyone\n'), /COPY requires at least two arguments/, 2);
  await rejects(build('FROM busybox\nCOPY a <<EOF\nx\nEOF\n'), /COPY cannot accept a heredoc as a destination/, 2);
});

test('COPY history: --parents/--chown/--chmod, expanded sources and destination; not --from/--link', async () => {
  const g = await build('FROM busybox\nENV D=/opt\nCOPY --link --chown=1:1 --chmod=644 a $D/\n');
  assert.equal(g.config.history!.at(-1)!.created_by, 'COPY --chown=1:1 --chmod=644 a /opt/ # buildkit');
  const a = copies(root(g) as FileVertex)[0];
  assert.deepEqual(a.chown, { user: '1', group: '1' });
  assert.equal(a.chmod, '644');
  assert.equal(root(g).name, '[2/2] COPY --link --chown=1:1 --chmod=644 a /opt/');
});

test('COPY/ADD exec form: sources and destination expand like the shell form (BuildKit SourcesAndDest.Expand)', async () => {
  const g = await build('FROM busybox\nARG F=app.txt\nENV D=/opt\nCOPY ["src/${F}", "$D/"]\nADD ["${F}.tar", "/t/"]\n');
  const c = copies(named(g, 'COPY') as FileVertex)[0];
  assert.deepEqual([c.srcPaths, c.dest], [['/src/app.txt'], '/opt/']);
  assert.deepEqual(copies(named(g, 'ADD') as FileVertex)[0].srcPaths, ['/app.txt.tar']);
  assert.deepEqual(history(g).slice(-2), ['COPY src/app.txt /opt/ # buildkit', 'ADD app.txt.tar /t/ # buildkit']);
  const ctx = vertices(g).find((v) => v.kind === 'local') as LocalSourceVertex;
  assert.deepEqual(ctx.includePatterns, ['app.txt.tar', 'src/app.txt']);
});

test('--chown expands variables, --chmod octal and symbolic, invalid chmod errors', async () => {
  const g = await build('FROM busybox\nARG U=app\nCOPY --chown=$U:staff --chmod=u+x,g-w a /a\nCOPY --chown=1000 b /b\n');
  assert.deepEqual(copies(named(g, 'COPY --chown=app') as FileVertex)[0].chown, { user: 'app', group: 'staff' });
  assert.equal(copies(named(g, 'COPY --chown=app') as FileVertex)[0].chmod, 'u+x,g-w');
  assert.deepEqual(copies(named(g, 'COPY --chown=1000') as FileVertex)[0].chown, { user: '1000' });
  const e = await build('FROM busybox\nCOPY --chown=app: a /a\n');
  assert.deepEqual(copies(root(e) as FileVertex)[0].chown, { user: 'app', group: '0' }, "'app:' is app with group 0, as BuildKit's llb.WithUser reads it");
  await rejects(build('FROM busybox\nCOPY --chmod=999 a /a\n'), /invalid chmod parameter: '999'. it should be octal string and between 0 and 07777/, 2);
  await rejects(build('FROM busybox\nCOPY --chmod=17777 a /a\n'), /between 0 and 07777/, 2);
  await rejects(build('FROM busybox\nCOPY --chmod=u+q a /a\n'), /invalid chmod/, 2);
});

test('COPY --link, --exclude, --parents', async () => {
  const g = await build('FROM busybox\nCOPY --link --exclude=*.tmp --exclude=cache/ dir/ /d/\nCOPY --parents a/./b/*.txt c/d.txt /p/\n');
  const l = named(g, '--link') as FileVertex;
  assert.equal(l.link, true);
  assert.deepEqual(copies(l)[0].excludePatterns, ['*.tmp', 'cache/']);
  const p = copies(named(g, '--parents') as FileVertex);
  assert.deepEqual(p.map((a) => [a.srcPaths, a.includePatterns, a.parents]), [
    [['/a'], ['b/*.txt'], true],
    [['/'], ['c/d.txt'], true],
  ]);
  const ctx = vertices(g).find((v): v is LocalSourceVertex => v.kind === 'local')!;
  assert.deepEqual(ctx.includePatterns, ['a/b/*.txt', 'c/d.txt', 'dir']);
});

test('ADD: local archives unpack, --unpack=false does not, COPY never', async () => {
  const g = await build('FROM busybox\nADD app.tar.gz /opt/\nADD --unpack=false data.tar /d/\nCOPY x.tar /x/\n');
  assert.equal(copies(named(g, 'ADD app.tar.gz') as FileVertex)[0].attemptUnpack, true);
  assert.equal(copies(named(g, 'ADD --unpack=false') as FileVertex)[0].attemptUnpack, false);
  assert.equal(copies(named(g, 'COPY x.tar') as FileVertex)[0].attemptUnpack, false);
});

test('ADD of an http(s) URL: http source with checksum and file name rules', async () => {
  const sum = 'sha256:' + 'b'.repeat(64);
  const g = await build(`FROM busybox\nADD --checksum=${sum} https://example.com/dl/tool-1.0.tgz /opt/\nADD https://example.com/ /index\n`);
  // Like BuildKit, the download and the copy share the step's progress name.
  const c = vertices(g).find((v) => v.kind === 'file' && v.name.includes('tool-1.0.tgz')) as FileVertex;
  assert.equal(c.name, `[2/3] ADD --checksum=${sum} https://example.com/dl/tool-1.0.tgz /opt/`);
  const a = copies(c)[0];
  const src = input(g, c, a.src) as HttpSourceVertex;
  assert.equal(src.kind, 'http');
  assert.equal(src.url, 'https://example.com/dl/tool-1.0.tgz');
  assert.equal(src.checksum, sum);
  assert.equal(src.filename, 'tool-1.0.tgz');
  assert.deepEqual([a.srcPaths, a.dest, a.attemptUnpack], [['/tool-1.0.tgz'], '/opt/', false]);
  const u = root(g) as FileVertex;
  const us = input(g, u, copies(u)[0].src) as HttpSourceVertex;
  assert.equal(us.filename, '__unnamed__');
  await rejects(build('FROM busybox\nCOPY https://example.com/x /x\n'), /source can't be a URL for COPY/, 2);
  await rejects(build('FROM busybox\nADD --checksum=sha256:abc local.txt /x\n'), /checksum requires HTTP\(S\) or Git sources/, 2);
  await rejects(build('FROM busybox\nADD --checksum=sha256:abc https://a/x https://a/y /x/\n'), /checksum can't be specified for multiple sources/, 2);
});

test('ADD --checksum of a URL is read as go-digest reads it: the algorithm BuildKit has, its length, lowercase hex', async () => {
  const hex = 'd0b425e00e15a0d36b9b361f02bab63563aed6cb4665083905386c55d5b679fa';
  const add = (sum: string) => build(`FROM busybox\nADD --checksum=${sum} https://example.com/foo /tmp/foo\n`);
  await add(`sha256:${hex}`);
  await add(`sha512:${'a'.repeat(128)}`);
  await rejects(add('md5:7e55db001d319a94b0b713529a756623'), /unsupported digest algorithm/, 2);
  await rejects(add(`unknown:${hex}`), /unsupported digest algorithm/, 2);
  await rejects(add(hex), /invalid checksum digest format/, 2);
  await rejects(add('sha256:abc'), /invalid checksum digest length/, 2);
  await rejects(add(`sha256:${hex.toUpperCase()}`), /invalid checksum digest format/, 2);
});

test('ADD of a git URL in BuildKit\'s query form: ?ref/?branch/?tag/?commit/?subdir, not part of the remote', async () => {
  const src = async (line: string) => {
    const g = await build(`FROM busybox\n${line}\n`);
    const c = root(g) as FileVertex;
    return input(g, c, copies(c)[0].src) as GitSourceVertex;
  };
  const sha = 'a'.repeat(40);
  const b = await src('ADD https://example.com/r.git?branch=dev&subdir=docs /x');
  assert.deepEqual([b.remote, b.ref, b.subdir], ['https://example.com/r.git', 'refs/heads/dev', 'docs']);
  const t = await src(`ADD https://example.com/r.git?tag=v1&commit=${sha} /x`);
  assert.deepEqual([t.ref, t.checksum], ['refs/tags/v1', sha]);
  const c = await src(`ADD https://example.com/r.git?commit=${sha} /x`);
  assert.deepEqual([c.ref, c.checksum], [sha, sha]);
  const same = await src('ADD https://example.com/r.git?tag=v1#refs/tags/v1 /x');
  assert.equal(same.ref, 'refs/tags/v1');
  await rejects(build('FROM busybox\nADD https://example.com/r.git?tag=v1#refs/heads/main /x\n'), /ref conflicts/, 2);
  await rejects(build('FROM busybox\nADD https://example.com/r.git?bogus=1 /x\n'), /unexpected query key "bogus"/, 2);
});

test('ADD of a git URL: git source with ref, subdir and --keep-git-dir', async () => {
  const g = await build('FROM busybox\nADD --keep-git-dir https://github.com/moby/buildkit.git#v0.12.0:docs /src\nADD git@github.com:o/r.git /r\n');
  const c = vertices(g).find((v) => v.kind === 'file' && v.name.includes('buildkit.git')) as FileVertex;
  const src = input(g, c, copies(c)[0].src) as GitSourceVertex;
  assert.deepEqual(
    { kind: src.kind, remote: src.remote, ref: src.ref, subdir: src.subdir, keep: src.keepGitDir },
    { kind: 'git', remote: 'https://github.com/moby/buildkit.git', ref: 'v0.12.0', subdir: 'docs', keep: true },
  );
  const r = root(g) as FileVertex;
  assert.equal((input(g, r, copies(r)[0].src) as GitSourceVertex).remote, 'git@github.com:o/r.git');
  const commit = 'a'.repeat(40);
  const h = await build(`FROM busybox\nADD --checksum=${commit} https://github.com/o/r.git#v1 /r\n`);
  const hv = input(h, root(h), copies(root(h) as FileVertex)[0].src) as GitSourceVertex;
  assert.deepEqual([hv.ref, hv.checksum], ['v1', commit]);
  const local = await build('FROM busybox\nADD github.com/o/r /r\n');
  assert.equal(input(local, root(local), copies(root(local) as FileVertex)[0].src).kind, 'local', 'a bare host/path is a local path');
});

test('COPY heredoc: inline document becomes a mkfile vertex copied to the destination', async () => {
  const df = 'FROM busybox\nENV NAME=world\nCOPY <<EOF /etc/greeting\nhello $NAME\nEOF\nCOPY <<"RAW" <<TWO /multi/\nkeep $NAME\nRAW\ntwo\nTWO\n';
  const g = await build(df);
  const c = named(g, 'COPY <<EOF') as FileVertex;
  assert.equal(c.name, '[2/3] COPY <<EOF /etc/greeting');
  const a = copies(c)[0];
  const doc = input(g, c, a.src) as FileVertex;
  assert.equal(doc.name, '[internal] preparing inline document');
  assert.deepEqual(doc.actions, [{ op: 'mkfile', path: '/EOF', mode: 0o644, data: 'hello world\n' }]);
  const q = await build('FROM busybox\nENV N=x\nCOPY <<EOF /q\necho \'$N\' "$N" \\$N\nEOF\n');
  const qc = copies(root(q) as FileVertex)[0];
  assert.deepEqual((input(q, root(q), qc.src) as FileVertex).actions[0], { op: 'mkfile', path: '/EOF', mode: 0o644, data: 'echo \'x\' "x" $N\n' }, 'quotes are literal in heredocs; variables expand inside them');
  assert.deepEqual([a.srcPaths, a.dest], [['/EOF'], '/etc/greeting']);
  const m = named(g, 'COPY <<"RAW"') as FileVertex;
  const docs = copies(m).map((x) => (input(g, m, x.src) as FileVertex).actions[0]);
  assert.deepEqual(docs, [
    { op: 'mkfile', path: '/RAW', mode: 0o644, data: 'keep $NAME\n' },
    { op: 'mkfile', path: '/TWO', mode: 0o644, data: 'two\n' },
  ]);
  assert.equal(g.config.history!.at(-1)!.created_by, 'COPY <<RAW <<TWO /multi/ # buildkit');
});

test('RUN heredoc: plain script runs in the shell; shebang script runs as a file', async () => {
  const df = 'FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<EOT\n#!/usr/bin/env python3\nprint("hi")\nEOT\nRUN cat <<A > /f\ncontent\nA\n';
  const g = await build(df);
  const plain = named(g, 'echo one') as ExecVertex;
  assert.equal(plain.name, '[2/4] RUN <<EOF (echo one...)');
  assert.deepEqual(plain.args, ['/bin/sh', '-c', 'echo one\necho two\n']);
  const py = named(g, 'python3') as ExecVertex;
  assert.equal(py.name, '[3/4] RUN <<EOT (#!/usr/bin/env python3...)');
  assert.deepEqual(py.args, ['/bin/sh', '-c', '/dev/pipes/EOT']);
  const pipe = py.mounts.find((m) => m.target === '/dev/pipes/')!;
  assert.equal(pipe.readonly, true);
  assert.deepEqual((input(g, py, pipe.input!) as FileVertex).actions, [{ op: 'mkfile', path: '/EOT', mode: 0o755, data: '#!/usr/bin/env python3\nprint("hi")\n' }]);
  const redirect = named(g, 'RUN cat <<A') as ExecVertex;
  assert.deepEqual(redirect.args, ['/bin/sh', '-c', 'cat <<A > /f\ncontent\nA']);
  assert.equal(g.config.history!.at(-1)!.created_by, 'RUN /bin/sh -c cat <<A > /f\ncontent\nA # buildkit');
});

test('RUN: exec form, env, cwd, user, network, security', async () => {
  const g = await build('FROM node:20\nWORKDIR /app\nENV A=1\nRUN --network=none --security=insecure ["npm", "ci"]\n');
  const r = root(g) as ExecVertex;
  assert.deepEqual(r.args, ['npm', 'ci']);
  assert.deepEqual(r.env, ['PATH=/usr/bin:/bin', 'NODE_VERSION=20.0.0', 'A=1']);
  assert.equal(r.cwd, '/app');
  assert.equal(r.user, 'node');
  assert.equal(r.network, 'none');
  assert.equal(r.security, 'insecure');
  assert.equal(r.rootfs, 0);
  assert.equal(g.config.history!.at(-1)!.created_by, 'RUN npm ci # buildkit');
  await rejects(build('FROM busybox\nRUN --network=bridge true\n'), /network/, 2);
  await rejects(build('FROM busybox\nRUN --security=root true\n'), /security/, 2);
});

test('RUN --mount: cache, bind, tmpfs, secret, ssh with defaults', async () => {
  const df = [
    'FROM busybox AS deps',
    'RUN echo > /lock',
    'FROM busybox',
    'WORKDIR /src',
    'RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000 \\',
    '    --mount=type=bind,from=deps,source=/lock,target=lock.txt \\',
    '    --mount=type=bind,target=/ctx,rw \\',
    '    --mount=type=tmpfs,target=/tmp,size=64m \\',
    '    --mount=type=secret,id=npmrc,target=/root/.npmrc,required \\',
    '    --mount=type=secret,id=token,env=TOKEN \\',
    '    --mount=type=secret,source=aws \\',
    '    --mount=type=ssh \\',
    '    --mount=type=ssh,id=github,target=/ssh.sock \\',
    '    make',
  ].join('\n');
  const g = await build(df);
  const r = root(g) as ExecVertex;
  const [cache, bind, ctx, tmpfs, secret, envSecret, aws, ssh, ssh2] = r.mounts;
  assert.deepEqual(cache, { target: '/root/.cache', type: 'cache', readonly: false, cacheId: '/root/.cache', sharing: 'locked', mode: 0o700, uid: 1000 });
  assert.equal(bind.type, 'bind');
  assert.equal(bind.target, '/src/lock.txt');
  assert.equal(bind.source, '/lock');
  assert.equal(bind.readonly, true);
  assert.equal(input(g, r, bind.input!).name, '[deps 2/2] RUN echo > /lock');
  assert.equal(ctx.readonly, false);
  assert.equal(input(g, r, ctx.input!).name, '[internal] load build context');
  assert.deepEqual(tmpfs, { target: '/tmp', type: 'tmpfs', size: 64 * 1024 * 1024 });
  assert.deepEqual(secret, { target: '/root/.npmrc', type: 'secret', secretId: 'npmrc', required: true, mode: 0o400, uid: 0, gid: 0 });
  assert.deepEqual(envSecret, { target: '', type: 'secret', secretId: 'token', required: false, mode: 0o400, uid: 0, gid: 0, env: 'TOKEN' });
  assert.equal(aws.target, '/run/secrets/aws');
  assert.deepEqual(ssh, { target: '/run/buildkit/ssh_agent.0', type: 'ssh', sshId: 'default', required: false, mode: 0o600, uid: 0, gid: 0 });
  assert.equal(ssh2.target, '/ssh.sock');
  assert.deepEqual(g.secrets, ['aws', 'npmrc', 'token']);
  assert.deepEqual(g.ssh, ['default', 'github']);
});

test('RUN --mount target: relative or missing joins the working directory, the root is refused (BuildKit)', async () => {
  const g = await build('FROM busybox\nWORKDIR /srv/app\nRUN --mount=type=cache,target=deps --mount=type=tmpfs true\n');
  const [deps, scratch] = (root(g) as ExecVertex).mounts;
  assert.equal(deps.target, '/srv/app/deps');
  assert.equal(deps.cacheId, 'deps'); // the default id is the target as written, cleaned
  assert.equal(scratch.target, '/srv/app');
  const noTarget = await build('FROM busybox\nWORKDIR /w\nRUN --mount=type=cache true\n');
  assert.equal((root(noTarget) as ExecVertex).mounts[0].target, '/w');
  assert.equal((root(noTarget) as ExecVertex).mounts[0].cacheId, '.');
  await rejects(build('FROM busybox\nRUN --mount=type=cache true\n'), /invalid mount target "\/"/, 2);
  await rejects(build('FROM busybox\nWORKDIR /w\nRUN --mount=type=bind,target=.. true\n'), /invalid mount target "\/"/, 3);
});

test('RUN --mount errors name the line', async () => {
  await rejects(build('FROM busybox\nRUN --mount=type=nfs,target=/x true\n'), /unsupported mount type "nfs"/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=cache true\n'), /target/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=bind,target=/x,mode=0755 true\n'), /mode not allowed for "bind" type mounts/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=tmpfs,target=/x,sharing=locked true\n'), /sharing/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=cache,target=/x,bogus=1 true\n'), /unexpected key 'bogus'/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=cache,target=/x,uid=abc true\n'), /invalid value abc for uid/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=cache,target=/x,bogus true\n'), /invalid field 'bogus' must be a key=value pair/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=ssh,source=x true\n'), /ssh does not support source/, 2);
  await rejects(build('ARG S=a\nFROM busybox\nRUN --mount=from=$S,target=/x true\n'), /'from' doesn't support variable expansion, define alias stage instead/, 3);
  await rejects(build('FROM busybox\nRUN --mount=type=secret,from=x,id=a true\n'), /secret mount should not have a from/, 2);
  await rejects(build('FROM busybox\nRUN --mount=type=cache,target=/ true\n'), /invalid mount target/, 2);
  // near misses get BuildKit's "did you mean"
  await rejects(build('FROM busybox\nRUN --mount=type=tmp,target=/t true\n'), /unsupported mount type "tmp" \(did you mean tmpfs\?\)/, 2);
  await rejects(build('FROM busybox\nRUN --mount=typ=cache,target=/t true\n'), /unexpected key 'typ' in 'typ=cache' \(did you mean type\?\)/, 2);
});

test('progress names substitute set variables, keep quotes and unset ones, drop escapes', async () => {
  const g = await build('FROM scratch\nENV A=1\nRUN echo \\$A "$A" \'$A\' $B ${A}x\n');
  assert.equal(root(g).name, '[1/1] RUN echo $A "1" \'$A\' $B 1x');
  assert.deepEqual((root(g) as ExecVertex).args, ['/bin/sh', '-c', 'echo \\$A "$A" \'$A\' $B ${A}x']);
});

test('secret env values are masked in the progress name', async () => {
  const g = await build('FROM busybox\nENV TOKEN=visible\nRUN --mount=type=secret,id=t,env=TOKEN echo $TOKEN\n');
  assert.equal(root(g).name, '[2/2] RUN --mount=type=secret,id=t,env=TOKEN echo ****');
});

test('RUN --mount values expand variables', async () => {
  const g = await build('FROM busybox\nARG CACHE=/var/cache/apt\nRUN --mount=type=cache,target=$CACHE,id=apt-$CACHE true\n');
  assert.equal((root(g) as ExecVertex).mounts[0].target, '/var/cache/apt');
  assert.equal((root(g) as ExecVertex).mounts[0].cacheId, 'apt-/var/cache/apt');
});

test('noCache marks exec and file vertices', async () => {
  const g = await build('FROM busybox\nCOPY a /a\nRUN true\n', { noCache: true });
  assert.equal(named(g, 'RUN').ignoreCache, true);
  assert.equal(named(g, 'COPY').ignoreCache, true);
});

test('vertex ids are stable digests of the definition', async () => {
  const df = 'FROM busybox\nCOPY . /src\nRUN make\n';
  const [a, b] = await Promise.all([build(df), build(df)]);
  assert.deepEqual(Object.keys(a.vertices).sort(), Object.keys(b.vertices).sort());
  const c = await build(df.replace('make', 'make all'));
  assert.notEqual(a.root!.vertex, c.root!.vertex);
  for (const id of Object.keys(a.vertices)) assert.match(id, /^sha256:[a-f0-9]{64}$/);
  // Every id is the digest of its vertex, inputs included (also after the context re-keying).
  for (const g of [a, c, await build(GO_APP), await build(NODE_APP), await build(STATIC)]) {
    for (const v of vertices(g)) {
      assert.equal(vertexDigest(v), v.id, v.name);
      for (const i of v.inputs) assert.ok(g.vertices[i.vertex], `input of ${v.name} is in the graph`);
    }
  }
});

// ---- whole-graph snapshots ----

const GO_APP = `# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:\${GO_VERSION} AS build
WORKDIR /src
RUN --mount=type=cache,target=/go/pkg/mod \\
    --mount=type=bind,source=go.mod,target=go.mod \\
    go mod download
ARG TARGETOS TARGETARCH
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/server ./cmd/server

FROM alpine:3.19 AS runtime
RUN adduser -D app
USER app
COPY --from=build --chown=app /out/server /usr/local/bin/server
EXPOSE 8080
HEALTHCHECK --interval=10s CMD wget -qO- http://localhost:8080/health || exit 1
ENTRYPOINT ["/usr/local/bin/server"]
`;

const NODE_APP = `FROM node:20 AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci

FROM deps AS test
COPY . .
RUN npm test

FROM node:20
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
LABEL org.opencontainers.image.title=app
CMD ["node", "server.js"]
`;

const STATIC = `FROM busybox AS assets
COPY <<EOF /www/index.html
<h1>hi</h1>
<h1>hi</h1>
EOF
ADD https://example.com/logo.png /www/
FROM scratch
COPY --from=assets /www /www
COPY --from=busybox:latest /bin/busybox /bin/busybox
ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-h", "/www"]
`;

test('snapshot: Go app (cross-compile stage, cache mounts)', async () => {
  const g = await build(GO_APP, {
    targetPlatform: { os: 'linux', architecture: 'arm64' },
    buildPlatform: { os: 'linux', architecture: 'amd64' },
    sourceDateEpoch: 0,
  });
  assert.deepEqual(chain(g), [
    '[runtime 1/3] FROM docker.io/library/alpine:3.19@sha256:' + 'a'.repeat(64),
    '[runtime 2/3] RUN adduser -D app',
    '[runtime 3/3] COPY --from=build --chown=app /out/server /usr/local/bin/server',
  ]);
  const goBuild = named(g, 'go build') as ExecVertex;
  assert.equal(goBuild.name, '[build 5/5] RUN --mount=type=cache,target=/root/.cache/go-build GOOS=linux GOARCH=arm64 go build -o /out/server ./cmd/server');
  assert.deepEqual(goBuild.platform, { os: 'linux', architecture: 'amd64' });
  assert.ok(goBuild.env.includes('TARGETARCH=arm64'));
  assert.equal(g.config.architecture, 'arm64');
  assert.equal(g.config.config!.User, 'app');
  assert.deepEqual(g.config.config!.Entrypoint, ['/usr/local/bin/server']);
  assert.equal(g.config.config!.Cmd, null);
  snapshot('go-app', shape(g));
});

test('snapshot: Node app (FROM <stage>, unused test stage pruned)', async () => {
  const g = await build(NODE_APP, { labels: { 'org.opencontainers.image.version': '1.2.3' } });
  assert.ok(!vertices(g).some((v) => v.name.includes('npm test')));
  assert.equal(vertices(g).filter((v) => v.name.startsWith('[internal] load build context')).length, 1);
  assert.deepEqual(g.config.config!.Labels, { maintainer: 'node', 'org.opencontainers.image.title': 'app', 'org.opencontainers.image.version': '1.2.3' });
  assert.deepEqual(g.config.config!.Cmd, ['node', 'server.js']);
  snapshot('node-app', shape(g));
  const t = await build(NODE_APP, { target: 'test' });
  assert.equal(root(t).name, '[test 2/2] RUN npm test');
  snapshot('node-app-test', shape(t));
});

test('snapshot: static site from scratch (heredoc, ADD URL, COPY --from image)', async () => {
  const g = await build(STATIC);
  assert.equal(root(g).name, '[stage-1 2/2] COPY --from=busybox:latest /bin/busybox /bin/busybox');
  assert.equal((root(g) as FileVertex).base, 0);
  assert.equal(g.config.config!.WorkingDir, '/');
  snapshot('static-site', shape(g));
});
