// img build with git: a git:// URL as the context, and ADD of a repository,
// against a real `git daemon` on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup } from '../helpers/rootless';
import { build, setup, skip } from './helpers';

test('img build (rootless): git URL context and ADD of a git repository (git daemon on 127.0.0.1)', { skip, timeout: 120_000 }, async (t) => {
  const { freePort } = await import('../fixtures/registry');
  const e = await setup({});
  t.after(() => cleanup(e.root));
  const repos = path.join(e.root, 'repos');
  const repo = path.join(repos, 'app.git');
  const work = path.join(e.root, 'work');
  fs.mkdirSync(work, { recursive: true });
  fs.writeFileSync(path.join(work, 'Dockerfile'), 'FROM busybox\nCOPY hello.txt /hello.txt\n');
  fs.writeFileSync(path.join(work, 'hello.txt'), 'from git\n');
  const git = (args: string[], cwd: string) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { cwd, stdio: 'pipe' });
  git(['init', '-q'], work);
  git(['add', '.'], work);
  git(['commit', '-q', '-m', 'init'], work);
  fs.mkdirSync(repos, { recursive: true });
  git(['clone', '-q', '--bare', work, repo], e.root);
  const port = await freePort();
  const daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${repos}`, '--listen=127.0.0.1', `--port=${port}`, repos], { stdio: 'ignore' });
  t.after(() => {
    daemon.kill('SIGTERM');
  });
  // Wait until it accepts connections.
  const net = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = `git://127.0.0.1:${port}/app.git`;
  const out = path.join(e.root, 'out');
  const r = await build(e, ['-o', `type=local,dest=${out}`, `${url}#main`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'hello.txt'), 'utf8'), 'from git\n');

  const out2 = path.join(e.root, 'out2');
  const r2 = await build(e, ['-o', `type=local,dest=${out2}`, '-'], { input: `FROM busybox\nADD ${url}#main /src\n` });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(fs.readFileSync(path.join(out2, 'src/hello.txt'), 'utf8'), 'from git\n');
  assert.ok(!fs.existsSync(path.join(out2, 'src/.git')), 'no .git unless --keep-git-dir');

  // ADD --checksum of a git source (BuildKit's testAddGit): the commit the ref resolves to,
  // or a prefix of it; an annotated tag matches by the commit it tags.
  const commit = git(['rev-parse', 'main'], repo).toString().trim();
  git(['tag', '-a', 'v1', '-m', 'v1', 'main'], repo);
  const add = (line: string) => build(e, ['-o', `type=local,dest=${path.join(e.root, `o-${Math.random()}`)}`, '-'], { input: `FROM busybox\n${line}\n` });
  for (const line of [`ADD --checksum=${commit} ${url}#v1 /t`, `ADD --checksum=${commit.slice(0, 8)} ${url}#main /m`]) {
    const ok = await add(line);
    assert.equal(ok.code, 0, `${line}: ${ok.stderr}`);
  }
  const wrong = await add(`ADD --checksum=${'0'.repeat(40)} ${url}#main /w`);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, new RegExp(`expected checksum to match ${'0'.repeat(40)}, got ${commit}`));
  const garbage = await add(`ADD --checksum=foobar ${url}#main /g`);
  assert.notEqual(garbage.code, 0);
  assert.match(garbage.stderr, /invalid checksum foobar for Git URL, expected hex commit hash/);

  // BuildKit's query form (testGitQueryString): ?branch=, ?tag=, ?ref=, ?commit=; a ref given
  // twice must agree; a branch that is not there is named.
  for (const q of ['?branch=main', '?tag=v1', '?ref=main', `?commit=${commit}`, `?tag=v1&commit=${commit}`, '?tag=v1#refs/tags/v1']) {
    const ok = await add(`ADD ${url}${q} /q`);
    assert.equal(ok.code, 0, `${q}: ${ok.stderr}`);
  }
  const conflict = await add(`ADD ${url}?tag=v1#refs/heads/main /c`);
  assert.notEqual(conflict.code, 0);
  assert.match(conflict.stderr, /ref conflicts/);
  const tagAsBranch = await add(`ADD ${url}?branch=v1 /b`);
  assert.notEqual(tagAsBranch.code, 0);
  assert.match(tagAsBranch.stderr, /repository does not contain ref refs\/heads\/v1/);
});
