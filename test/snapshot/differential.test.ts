// The backends build one filesystem from one image (issue 13.2): a seeded generator makes
// stacks of tricky layers (tar-stream writes them, not img's tar codec), each backend
// unpacks them through its real snapshotter as the unprivileged user, and the merged trees
// must be the same: names, types, modes, owners, link targets, contents, file mtimes,
// hard-link groups, user.* xattrs — or every backend must refuse the stack with the same
// error code.
//
// The reference is docker's and containerd's apply (extracting onto the mounted merged
// tree) and the OCI image spec's "Applying Changesets":
//  1. Entries apply in order onto the merged tree of the layers below; the last entry
//     for a path wins.
//  2. A parent component that is a symlink (in this layer or a lower one) is followed,
//     inside the rootfs: an absolute target starts at the image root, '..' stops there.
//     So a lower `evil -> /tmp` and a later `evil/x` write the image's /tmp/x.
//  3. A missing parent is made: a directory 0755 root:root.
//  4. An entry replaces what is at its path, unless both are directories: then the
//     contents stay and the directory takes the entry's mode, owner and xattrs.
//  5. `.wh.NAME` removes NAME (a whole tree for a directory) from the merged tree; a
//     whiteout of a missing path does nothing. Any entry type with that name is a
//     whiteout (containerd looks at the name only).
//  6. `.wh..wh..opq` in directory D removes everything below D that this layer has not
//     written (its entries and the directories they were written through) — at the
//     root too, and whatever its entry type.
//  7. A hard link's target is a path of the merged tree (this layer's or a lower one's);
//     the link shares its inode. A missing target fails the layer.
// Left out of the comparison: directory mtimes (a directory the layer does not name takes
// the time its children were written); on fuse-overlayfs, user.overlay.* xattrs, which it
// keeps out of its merged view (test/snapshot/overlay-xattrs.test.ts covers them), and
// hard-link groups: its merged view gives every path an inode number of its own (the
// layer directories hold the links, and layers written from them keep them).
//
// IMG_DIFF_SEED / IMG_DIFF_STACKS replay or widen the corpus; a mismatch prints the seed,
// the stack's entries and both trees.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tarOf, type FixtureEntry } from '../fixtures/layers';
import { generateStack } from './layer-corpus';
import { cleanup, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import type { StackReport } from './scenarios/layers';

const SEED = Number(process.env.IMG_DIFF_SEED ?? 13_2);
const STACKS = Number(process.env.IMG_DIFF_STACKS ?? 30);

// What fuse-overlayfs cannot show (see the header) is left out of every backend's tree.
function comparable(r: StackReport, backend: string): unknown {
  if (r.error) return { error: r.error.code };
  const tree = Object.fromEntries(
    Object.entries(r.tree!).map(([k, v]) => [k, v.replace(/user\.overlay\.[^=,\]]*=[0-9a-f]*,?/g, '').replace(/,\]$/, ']').replace(/ \[\]$/, '')]),
  );
  return backend === 'fuse-overlayfs' ? { tree } : { tree, links: r.links };
}

const BACKENDS = ['native', 'overlayfs', 'fuse-overlayfs'] as const;

describe(`backends agree on a generated corpus of layer stacks (seed ${SEED}, ${STACKS} stacks; rootless)`, { skip: skipUnlessRootless() }, () => {
  const dir = tempDir('img-diff-');
  const stacks: FixtureEntry[][][] = [];
  const results = new Map<string, StackReport[]>();
  after(() => cleanup(dir));

  before(async () => {
    const files: string[][] = [];
    for (let s = 0; s < STACKS; s++) {
      const layers = generateStack(SEED * 1000 + s);
      stacks.push(layers);
      files.push(
        await Promise.all(
          layers.map(async (entries, l) => {
            const f = path.join(dir, `s${s}-l${l}.tar`);
            fs.writeFileSync(f, await tarOf(entries));
            return f;
          }),
        ),
      );
    }
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ stacks: files }));
  });

  // The three run side by side: each is mostly waiting on its own file system work.
  test('every backend unpacks every stack', async () => {
    await Promise.all(
      BACKENDS.map(async (backend) => {
        const state = path.join(dir, `state-${backend}`);
        fs.mkdirSync(state);
        fs.chownSync(state, fs.statSync(dir).uid, fs.statSync(dir).gid);
        const res = await runScriptRootless('test/snapshot/scenarios/layers.ts', [state, backend, path.join(dir, 'spec.json')], { timeoutMs: 180_000 });
        assert.equal(res.code, 0, `${backend}: ${res.stderr}`);
        const out = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as { reports: StackReport[] };
        assert.equal(out.reports.length, STACKS);
        results.set(backend, out.reports);
      }),
    );
  });

  test('the corpus exercises what it is for', () => {
    const native = results.get('native');
    assert.ok(native, 'the native backend ran');
    const all = stacks.flat(2);
    const count = (f: (e: FixtureEntry) => boolean) => all.filter(f).length;
    assert.ok(count((e) => e.name.includes('.wh..wh..opq')) >= 10 && count((e) => e.name === '.wh..wh..opq' || e.name === '.wh..wh..opq/') >= 2, 'opaque markers, at the root too');
    assert.ok(count((e) => e.type === 'link') >= 10 && count((e) => e.type === 'symlink') >= 20, 'links of both kinds');
    // Most stacks apply (errors are compared too, but trees are the point).
    const ok = native.filter((r) => !r.error).length;
    assert.ok(ok >= STACKS * 0.5, `only ${ok} of ${STACKS} stacks applied: ${native.map((r) => r.error?.message).filter(Boolean).join('; ')}`);
    // Writes went through symlinked parents somewhere (rule 2).
    assert.ok(native.some((r) => r.tree && Object.keys(r.tree).some((p) => p.startsWith('tmp/'))), 'no write landed in the image /tmp through a link');
  });

  for (const backend of BACKENDS.slice(1)) {
    test(`${backend} builds the same trees as native`, (t) => {
      const native = results.get('native');
      const other = results.get(backend);
      if (!native || !other) return t.skip(`${!native ? 'native' : backend} did not run: its unpack failed in the test above, which reports why`);
      for (let s = 0; s < STACKS; s++) {
        const want = comparable(native[s], backend);
        const got = comparable(other[s], backend);
        assert.deepEqual(got, want, `stack ${s} (IMG_DIFF_SEED=${SEED}, generator seed ${SEED * 1000 + s}) differs on ${backend}; its layers:\n${JSON.stringify(stacks[s], null, 1)}\nnative error: ${native[s].error?.message ?? '-'}\n${backend} error: ${other[s].error?.message ?? '-'}`);
      }
    });
  }
});
