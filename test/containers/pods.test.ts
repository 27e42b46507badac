// img run the way a CI pod runs it (pod.ts: runc with Docker's defaults,
// uid 1000, masked /proc, no /dev/fuse, the state dir a volume): in each
// variant `img doctor` says what the pod allows and `img build` builds a
// multi-stage Dockerfile (RUN, COPY --from, COPY --chown) from the test
// registry, with the file tree and owners the mapping allows, and its output
// names the mapping, backend and /proc it used.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { makeBusyboxImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { ensureRootfs, imgInPod, podSkipReason, POD_UID, runPod, type PodVariant } from './pod';
import { assertTree, doctorAndBuild as runScenario, row, type DoctorJson } from './scenario';

describe('img in a pod', { skip: podSkipReason() }, () => {
  let registry: Registry;
  const volumes: string[] = [];
  before(async () => {
    ensureRootfs();
    registry = await startRegistry();
    await registry.seed('library/busybox', 'latest', await makeBusyboxImage());
  });
  after(async () => {
    await registry?.stop();
    for (const v of volumes) fs.rmSync(v, { recursive: true, force: true });
  });

  const doctorAndBuild = (variant: PodVariant, owner: number) =>
    runScenario({ variant, owner, registry: registry.host, img: imgInPod(), cleanup: volumes });

  it('Docker defaults (file-capability id helpers, masked /proc): subordinate ranges, overlayfs, host /proc', async () => {
    const r = await doctorAndBuild('default', 1000);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'host' });
    assert.match(row(r.doctor, 'helpers').found, /newuidmap \(file capability cap_setuid\)/);
    assert.equal(row(r.doctor, 'proc').status, 'warn');
    assert.match(row(r.doctor, 'proc').fix!, /systempaths=unconfined.*procMount: Unmasked/);
    assert.equal(row(r.doctor, 'fuse').status, 'info', 'no /dev/fuse, and not needed');
    assert.match(row(r.doctor, 'runc').found, /a trial container ran; runc warns "cannot toggle freezer/);

    assert.equal(r.buildCode, 0, r.buildLog);
    assert.match(r.buildLog, /DEBU snapshotter auto: chose overlayfs/);
    assert.match(r.buildLog, /WARN this host does not allow mounting a fresh \/proc/);
    assert.doesNotMatch(r.buildLog, /WARN user namespace maps only your own ids/);
    // runc's own warnings are debug lines, never a step's output.
    assert.match(r.buildLog, /^DEBU runc img-[0-9a-f]+: warning: cannot toggle freezer/m);
    assert.doesNotMatch(r.buildLog, /^#\d+ [\d.]+ .*(freezer|lstat )/m);
    await assertTree(r.tar, 1000, false);
  });

  it('no subordinate ranges (empty /etc/subuid and /etc/subgid): single id, root-owned files build', async () => {
    const r = await doctorAndBuild('no-subids', 0);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'single id', backend: 'overlayfs', proc: 'host' });
    assert.equal(row(r.doctor, 'mapping').found, `single id: uid 0→${POD_UID}; gid 0→${POD_UID}`);
    assert.equal(row(r.doctor, 'subids').fix, 'as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 user');

    assert.equal(r.buildCode, 0, r.buildLog);
    assert.match(r.buildLog, /WARN user namespace maps only your own ids \(uid and gid as 0\): no subordinate ids for user in \/etc\/subuid and \/etc\/subgid\./);
    assert.match(r.buildLog, /DEBU snapshotter auto: chose overlayfs/);
    assert.match(r.buildLog, /WARN this host does not allow mounting a fresh \/proc/);
    await assertTree(r.tar, 0, false);
  });

  it('setuid-root id helpers (Debian\'s, as in the report): doctor names the refusal and the file-capability fix', async () => {
    const r = await doctorAndBuild('setuid-helpers', 0);
    const mapping = row(r.doctor, 'mapping');
    assert.match(row(r.doctor, 'helpers').found, /newuidmap \(setuid root\)/);
    assert.match(mapping.found, /newuidmap refused: newuidmap: write to uid_map failed: Operation not permitted/);
    assert.match(mapping.fix!, /CAP_SYS_ADMIN, absent from this container's bounding set.*setcap cap_setuid=ep \/usr\/bin\/newuidmap/);
    assert.equal(mapping.status, 'warn');
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'single id', backend: 'overlayfs', proc: 'host' });
    assert.match(row(r.doctor, 'entry').found, /here: mapping single \(\/usr\/bin\/newuidmap failed \(exit 1\): newuidmap: write to uid_map failed/);
    // The build degrades to a single-id mapping, with one warning saying why.
    assert.equal(r.buildCode, 0, r.buildLog);
    assert.equal(r.buildLog.match(/^WARN user namespace maps only your own ids/gm)?.length, 1, r.buildLog);
    assert.match(r.buildLog, /WARN user namespace maps only your own ids \(uid and gid as 0\): \/usr\/bin\/newuidmap failed \(exit 1\): newuidmap: write to uid_map failed: Operation not permitted\./);
    await assertTree(r.tar, 0, false);
  });

  it('/proc unmasked (--security-opt systempaths=unconfined): RUN steps get a fresh /proc and PID namespace', async () => {
    const r = await doctorAndBuild('unmasked-proc', 1000);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'fresh' });
    assert.equal(r.buildCode, 0, r.buildLog);
    assert.doesNotMatch(r.buildLog, /WARN/);
    await assertTree(r.tar, 1000, true);
  });

  it('the state dir inside the container, not on a volume: doctor says native backend, and the volume that fixes it', async () => {
    const cli = imgInPod();
    const res = await runPod({ variant: 'default', argv: [...cli.argv, 'doctor', '--format', 'json'], env: cli.env, volumes: cli.volumes });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout) as DoctorJson;
    assert.equal(r.verdict.backend, 'native');
    assert.match(row(r, 'state').found, / on overlayfs: /);
    assert.equal(row(r, 'overlayfs').status, 'warn');
    assert.match(row(r, 'overlayfs').fix!, /^the state dir is on overlayfs: put it on a volume \(docker run -v img-state:\/home\/user\/\.local\/share\/img/);
    assert.equal(row(r, 'backend').cost, 'copies on every step');
  });

  it('--privileged: fresh /proc in a PID namespace, /dev/fuse', async () => {
    const r = await doctorAndBuild('privileged', 1000);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'fresh' });
    assert.equal(row(r.doctor, 'fuse').status, 'ok');
    assert.equal(r.buildCode, 0, r.buildLog);
    assert.doesNotMatch(r.buildLog, /WARN/);
    await assertTree(r.tar, 1000, true);
  });
});

