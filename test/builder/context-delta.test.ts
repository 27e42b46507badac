// A touched build copies only what changed of the context into its local snapshot, on
// top of the previous one (lib/solver/ops/local.ts); what COPY sees must be exactly what
// a cold build of the same context sees: names, kinds, modes, times, contents, links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, rootlessUser } from '../helpers/rootless';
import { build, setup, skip } from './helpers';

// Every entry under dir: "path type mode mtime size/target sha" lines, sorted.
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      const time = Math.floor(st.mtimeMs);
      if (st.isDirectory()) {
        out.push(`${r} dir ${mode} ${time}`);
        walk(r);
      } else if (st.isSymbolicLink()) out.push(`${r} link ${time} -> ${fs.readlinkSync(abs)}`);
      else out.push(`${r} file ${mode} ${time} ${execFileSync('sha256sum', [abs]).toString().split(' ')[0]}`);
    }
  };
  walk('');
  return out;
}

test('img build (rootless): a touched context is applied as a change on the previous snapshot, and COPY sees what a cold build sees', { skip, timeout: 240_000 }, async (t) => {
  const files: Record<string, string> = { Dockerfile: 'FROM busybox\nCOPY . /ctx\n', 'keep.txt': 'same\n', 'edit.txt': 'v1\n', 'gone.txt': 'bye\n', 'was-file': 'f\n', 'was-dir/x': 'x\n' };
  for (let i = 0; i < 40; i++) files[`many/f${i}.txt`] = `content ${i}\n`.repeat(50);
  const e = await setup(files);
  t.after(() => cleanup(e.root));
  const ctx = (p: string) => path.join(e.ctx, p);
  fs.mkdirSync(ctx('ro'));
  fs.writeFileSync(ctx('ro/old.txt'), 'old\n');
  fs.chmodSync(ctx('ro'), 0o555);
  fs.symlinkSync('keep.txt', ctx('link'));
  const u = rootlessUser()!;
  const own = () => execFileSync('chown', ['-R', '-h', `${u.uid}:${u.gid}`, e.ctx]);
  own();

  const out1 = path.join(e.root, 'out1');
  const first = await build(e, ['-o', `type=local,dest=${out1}`, e.ctx]);
  assert.equal(first.code, 0, first.stderr);
  const records = path.join(e.state, 'cache', 'local-sources');
  // The record's first line is its header (solver/ops/local.ts); the entries follow.
  const record = () => JSON.parse(fs.readFileSync(path.join(records, fs.readdirSync(records)[0]), 'utf8').split('\n')[0]);
  assert.equal(record().depth, 0, 'the first build copies the whole context');

  // Every kind of change: content, removal, addition in a new directory, mode, time only,
  // file → directory, directory → symlink, link target, a file in a read-only directory.
  fs.writeFileSync(ctx('edit.txt'), 'v2, longer\n');
  fs.rmSync(ctx('gone.txt'));
  fs.mkdirSync(ctx('new/deeper'), { recursive: true });
  fs.writeFileSync(ctx('new/deeper/n.txt'), 'new\n');
  fs.chmodSync(ctx('many/f1.txt'), 0o600);
  fs.utimesSync(ctx('many/f2.txt'), new Date(2020, 1, 1), new Date(2020, 1, 1));
  fs.rmSync(ctx('was-file'));
  fs.mkdirSync(ctx('was-file'));
  fs.writeFileSync(ctx('was-file/inside'), 'i\n');
  fs.rmSync(ctx('was-dir'), { recursive: true });
  fs.symlinkSync('many', ctx('was-dir'));
  fs.rmSync(ctx('link'));
  fs.symlinkSync('edit.txt', ctx('link'));
  fs.chmodSync(ctx('ro'), 0o755);
  fs.writeFileSync(ctx('ro/added.txt'), 'added\n');
  fs.chmodSync(ctx('ro'), 0o555);
  own();

  const out2 = path.join(e.root, 'out2');
  const second = await build(e, ['-o', `type=local,dest=${out2}`, e.ctx]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(record().depth, 1, 'the touched build applied the change on the previous snapshot');

  // The same context built cold in an empty state dir.
  const cold = await setup({});
  t.after(() => cleanup(cold.root));
  const out3 = path.join(cold.root, 'out3');
  const third = await build({ ...cold, ctx: e.ctx }, ['-o', `type=local,dest=${out3}`, e.ctx]);
  assert.equal(third.code, 0, third.stderr);

  const touched = listing(path.join(out2, 'ctx'));
  assert.deepEqual(touched, listing(path.join(out3, 'ctx')));
  assert.ok(touched.some((l) => l.startsWith('ro/added.txt file')) && !touched.some((l) => l.startsWith('gone.txt')), touched.join('\n'));
  assert.ok(touched.some((l) => /^was-dir link \d+ -> many$/.test(l)) && touched.some((l) => l.startsWith('ro dir 555 ')), touched.join('\n'));
  assert.notDeepEqual(listing(path.join(out1, 'ctx')), touched);
});
