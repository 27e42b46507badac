import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bytesSize } from '../../lib/util/units';
import { runImg } from '../helpers/cli';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';

let state: string;
let busybox: BuiltImage;
let app: BuiltImage;
before(async () => {
  state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-ls-'));
  busybox = await makeBusyboxImage();
  app = await makeBusyboxImage({ extraFiles: { 'etc/app.conf': 'x=1\n' }, mediaTypes: 'docker' });
  await busybox.writeToStore(state, 'busybox');
  await app.writeToStore(state, 'localhost:5000/team/app:1.0');
});
after(() => fsp.rm(state, { recursive: true, force: true }));

const total = (img: BuiltImage) => [...img.blobs.values()].reduce((a, b) => a + b.length, 0);

describe('img ls', () => {
  it('lists NAME SIZE CREATED AT UPDATED AT DIGEST, tab-aligned like img', async () => {
    const r = await runImg(['--state', state, 'ls']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines.at(-1), '');
    // NAME is padded to the widest name (27 chars + 1 → 32 columns, 4 tabs); the
    // later widths depend on "Less than a second ago" vs "2 seconds ago".
    assert.match(lines[0], /^NAME\t{4}SIZE\t{2}CREATED AT\t+UPDATED AT\t+DIGEST$/);
    const rows = lines.slice(1, -1).map((l) => l.split(/\t+/));
    assert.deepEqual(
      rows.map((c) => [c[0], c[1], c[4]]),
      [
        ['busybox:latest', bytesSize(total(busybox)), busybox.manifest.digest],
        ['localhost:5000/team/app:1.0', bytesSize(total(app)), app.manifest.digest],
      ],
    );
    for (const c of rows) {
      assert.match(c[2], /^(Less than a second|\d+ seconds?) ago$/);
      assert.match(c[3], /^(Less than a second|\d+ seconds?) ago$/);
    }
    // Tab stops of 8: every cell starts at the same column on every line.
    const cellStarts = (l: string): number[] => {
      const out = [0];
      let col = 0;
      let afterTab = false;
      for (const ch of l) {
        if (ch === '\t') {
          col += 8 - (col % 8);
          afterTab = true;
        } else {
          if (afterTab) out.push(col);
          afterTab = false;
          col++;
        }
      }
      return out;
    };
    const cols = lines.slice(0, -1).map(cellStarts);
    assert.equal(cols[0].length, 5);
    assert.equal(new Set(cols.map((c) => c.join(','))).size, 1, JSON.stringify(cols));
  });

  it('filters by name/reference globs on familiar and full names', async () => {
    const names = async (...f: string[]) => {
      const r = await runImg(['--state', state, 'ls', ...f.flatMap((x) => ['-f', x])]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split('\n').slice(1, -1).map((l) => l.split('\t')[0]);
    };
    assert.deepEqual(await names('name=busybox'), ['busybox:latest']);
    assert.deepEqual(await names('reference=docker.io/library/busy*'), ['busybox:latest']);
    assert.deepEqual(await names('reference=localhost:5000/*/*'), ['localhost:5000/team/app:1.0']);
    assert.deepEqual(await names('reference=*:1.?', 'reference=busybox'), ['busybox:latest']);
    assert.deepEqual(await names('name=busybox', 'reference=localhost:5000/team/app'), []);
    assert.deepEqual(await names('reference=nothing*'), []);
    // Go's path.Match, as docker's reference filter: [!b] has the members '!' and 'b', only [^b] negates
    assert.deepEqual(await names('reference=[!b]usybox'), ['busybox:latest']);
    assert.deepEqual(await names('reference=[^b]usybox'), []);
    assert.deepEqual(await names('reference=localhost:5000/*'), [], '* stops at "/"');
  });

  it('names a malformed filter pattern and the fault', async () => {
    const r = await runImg(['--state', state, 'ls', '-f', 'reference=busy[box']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: syntax error in pattern "busy\[box": "\[" without a closing "\]"/);
  });

  it('rejects unknown filter keys and malformed filters, naming them', async () => {
    const r = await runImg(['--state', state, 'ls', '--filter', 'dangling=true']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: invalid filter "dangling" — supported filters: name, reference\n$/);
    const r2 = await runImg(['--state', state, 'ls', '-f', 'busybox']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /bad format of filter "busybox" \(expected name=value\)/);
  });

  it('prints only the header for an empty state dir', async () => {
    const empty = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-ls-empty-'));
    const r = await runImg(['--state', empty, 'ls']);
    await fsp.rm(empty, { recursive: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'NAME\tSIZE\tCREATED AT\tUPDATED AT\tDIGEST\n');
  });

  it("img images prints docker's table; -q, --no-trunc, --digests, --format and json as docker images", async () => {
    const id = async (name: string) => (await runImg(['--state', state, 'inspect', '-f', '{{.Id}}', name])).stdout.trim();
    const bb = await id('busybox');
    const ap = await id('localhost:5000/team/app:1.0');
    const short = (x: string) => x.slice(7, 19);

    const table = await runImg(['--state', state, 'images']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.split('\n');
    assert.match(lines[0], /^REPOSITORY {16}TAG {7}IMAGE ID {7}CREATED {7}SIZE$/);
    assert.match(lines[1], new RegExp(`^busybox {19}latest {4}${short(bb)} {3}2 years ago {3}\\d`));
    assert.match(lines[2], new RegExp(`^localhost:5000/team/app {3}1\\.0 {7}${short(ap)} {3}`));
    assert.equal(lines.length, 4);

    const q = await runImg(['--state', state, 'images', '-q']);
    assert.equal(q.stdout, `${short(bb)}\n${short(ap)}\n`);
    const ql = await runImg(['--state', state, 'ls', '-q', '--no-trunc']);
    assert.equal(ql.stdout, `${bb}\n${ap}\n`);

    const f = await runImg(['--state', state, 'images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}', '--filter', 'reference=busybox']);
    assert.equal(f.stdout, `busybox:latest ${short(bb)} ${busybox.manifest.digest}\n`);
    const d = await runImg(['--state', state, 'images', '--digests']);
    assert.match(d.stdout.split('\n')[0], /^REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE$/);
    assert.ok(d.stdout.includes(app.manifest.digest));

    const j = await runImg(['--state', state, 'images', '--format', 'json']);
    const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(rows[0]), ['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize']);
    // Go's time.Time.String() of the config's created time.
    const j0 = await runImg(['--state', state, 'images', '--format', '{{.CreatedAt}}', '-f', 'reference=busybox'], { env: { TZ: 'UTC' } });
    assert.equal(j0.stdout, '2024-01-01 00:00:00 +0000 UTC\n');

    // img ls keeps its own table, and takes docker's table templates too.
    const t = await runImg(['--state', state, 'ls', '--format', 'table {{.Name}}\t{{.ID}}']);
    assert.equal(t.stdout, `NAME                          IMAGE ID\nbusybox:latest                ${short(bb)}\nlocalhost:5000/team/app:1.0   ${short(ap)}\n`);
    const bad = await runImg(['--state', state, 'images', '--format', '{{.Nope}}']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /can't evaluate field Nope/);
  });
});
