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
    assert.equal(lines[0], 'NAME\t\t\t\tSIZE\t\tCREATED AT\tUPDATED AT\tDIGEST');
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
    // Tab stops: every DIGEST starts at the same column (tabs of 8).
    const expand = (l: string) => {
      let out = '';
      for (const ch of l) out += ch === '\t' ? ' '.repeat(8 - (out.length % 8)) : ch;
      return out;
    };
    const starts = lines.slice(1, -1).map((l) => expand(l).indexOf('sha256:'));
    assert.equal(new Set(starts).size, 1);
    assert.equal(expand(lines[0]).indexOf('DIGEST'), starts[0]);
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
});
