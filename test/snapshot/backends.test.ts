// Every snapshot backend, end to end, as the unprivileged test user inside
// its user namespace (scenarios/backend.ts does the work and reports JSON):
// unpack busybox (chainID keys, reuse), a RUN step through runc, commit,
// diff into a layer, and what the host sees of the files.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { cleanup, rootlessUser, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

const BACKENDS = ['overlayfs', 'fuse-overlayfs', 'native'] as const;

for (const backend of BACKENDS) {
  describe(`snapshot backend ${backend} (rootless)`, { skip: skipUnlessRootless() }, () => {
    const state = tempDir(`img-sn-${backend}-`);
    after(() => cleanup(state));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let r: any;

    test('scenario runs', async () => {
      const res = await runScriptRootless('test/snapshot/scenarios/backend.ts', [state, backend], { timeoutMs: 120_000 });
      assert.equal(res.code, 0, `scenario failed:\n${res.stderr}`);
      r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
      assert.equal(r.backend, backend);
    });

    test('unpack: one committed snapshot per layer, keyed by chainID, reused', () => {
      assert.match(r.top, /^sha256:[0-9a-f]{64}$/);
      assert.equal(r.again, r.top);
      assert.deepEqual(r.events, ['extracting', 'done', 'reused']);
      assert.equal(r.info.kind, 'committed');
      assert.equal(r.info.description, 'pulled from docker.io/library/busybox:latest');
    });

    test('unpacked tree: applets, modes, owners; committed mounts are read-only', () => {
      assert.ok(r.binCount > 100, `only ${r.binCount} entries in /bin`);
      assert.equal(r.shLink, 'busybox');
      assert.equal(r.busyboxMode, 0o755);
      assert.equal(r.busyboxUid, 0);
      assert.equal(r.committedWritable, 'EROFS');
    });

    test('RUN through runc: output, su to a uid, exit status, bad commands and users', () => {
      assert.deepEqual(r.run, { exitCode: 0, out: 'done\n' });
      assert.equal(r.whoami, '1000');
      assert.equal(r.exit7, 7);
      assert.notEqual(r.badCmd, 0);
      assert.equal(r.badUser, 'unable to find user nobodyhere: no matching entries in passwd file');
    });

    test('mounts: read-only and writable binds, tmpfs; their mount points stay out of the layer', () => {
      assert.deepEqual(r.mounts, { exit: 0, out: 'from host\nsrc-ro\ntmpfs-ok\n1\n', made: 'out\n' });
      const names = r.entries.map((e: { name: string }) => e.name);
      for (const n of ['src/', 'rw/', 'scratch/']) assert.ok(!names.includes(n), `${n} leaked into the layer`);
    });

    test('background processes are killed when the step ends', () => {
      assert.equal(r.leftoverSleeps, 0);
    });

    test('network=none has only lo; default shares the host network', () => {
      const ifaces = (s: string) =>
        s
          .split('\n')
          .slice(2)
          .map((l) => l.split(':')[0].trim())
          .filter(Boolean);
      assert.deepEqual(ifaces(r.netNone), ['lo']);
      assert.ok(ifaces(r.netDefault).length > 1, r.netDefault);
    });

    test('an active snapshot mounts again; overlayfs mounts it volatile and refuses a work dir a dead process left so', () => {
      assert.equal(r.remount.x, 'hi');
      // Linux 6.x shows it as fsync=volatile, 5.10–5.19 as volatile.
      const isVolatile = r.remount.options.some((o: string) => o === 'volatile' || o === 'fsync=volatile');
      if (backend === 'overlayfs') {
        assert.ok(isVolatile, r.remount.options.join(','));
        assert.match(r.orphanMount, /snapshot \S+ was left half-written by an img process that stopped/);
      } else {
        assert.ok(!isVolatile, r.remount.options.join(','));
        assert.equal(r.orphanMount, 'mounted'); // only the kernel's overlayfs leaves the marker
      }
    });

    test('commit + changes + layer: whiteout, opaque dir (or explicit deletes), owners', () => {
      const names = r.entries.map((e: { name: string }) => e.name);
      for (const n of ['x', 'etc/passwd', 'home/bob/', 'home/bob/f', 'data/gone/.wh.b', 'opq/new']) assert.ok(names.includes(n), `${n} missing from ${names}`);
      if (backend === 'native') assert.ok(names.includes('opq/.wh.old'), names.join(' '));
      else assert.ok(names.includes('opq/.wh..wh..opq'), names.join(' '));
      // Mount stubs runc made (/proc, /dev, /sys, /etc/hosts, /etc/resolv.conf) are not in the layer.
      for (const n of ['proc/', 'dev/', 'sys/', 'etc/hosts', 'etc/resolv.conf']) assert.ok(!names.includes(n), `${n} leaked into the layer`);
      assert.ok(!names.some((n: string) => n.includes('.wh..opq') && !n.endsWith('.wh..wh..opq')), names.join(' '));
      const f = r.entries.find((e: { name: string }) => e.name === 'home/bob/f');
      assert.equal(f.uid, 1000);
      assert.match(r.blob.digest, /^sha256:/);
      assert.equal(r.committedInfo.parent, r.top);
    });

    test('files owned by uid 1000 inside are subuid-start+999 on the host', () => {
      const u = rootlessUser()!;
      if (u.subuidStart === undefined) return; // no subordinate range: nothing to map (stated by the helper)
      const st = fs.statSync(r.bobFile);
      assert.equal(st.uid, u.subuidStart + 999);
      assert.equal(st.gid, (u.subgidStart ?? u.subuidStart) + 999);
    });

    test('a view of the commit sees the changes; removed snapshots fail cleanly; no mounts left', () => {
      assert.deepEqual(r.viewSees, { x: 'hi', b: false, a: true, opq: ['new'] });
      assert.match(r.mountRemoved, /does not exist/);
      assert.equal(r.list.length, 2);
      assert.deepEqual(r.mountsLeft, []);
    });
  });
}
