// Small namespace-side helpers for the CLI tests (run as the rootless user):
//   commit-exec <state> <backend> <image> <description>   a build-like snapshot on the image's chain
//   hold <state> <backend> <id>                           lease+mount <id>, print READY, wait for stdin EOF
//   derive <state> <backend> <image> <newName> <ociDir>    RUN-step layer on the image → new image + OCI layout
//   run-rootfs <state> <rootfs>                            runc on a plain directory (an unpacked rootfs)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { writeLayer } from '../../../lib/archive/diff';
import { createLayerBlob } from '../../../lib/archive/layer';
import { ContentStore } from '../../../lib/content/store';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { ImageStore } from '../../../lib/images/store';
import { normalizeName } from '../../../lib/images/reference';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../../../lib/images/types';
import { openSnapshotter } from '../../../lib/snapshot/index';
import { resolveStoredImage, unpackResolved } from '../../../lib/snapshot/rootfs';
import { createHash } from 'node:crypto';
import { runShell } from './common';

async function runSh(rootfs: string, state: string, script: string): Promise<string> {
  const res = await runShell(rootfs, state, script, 'none');
  if (res.exitCode !== 0) throw new Error(`step failed (${res.exitCode}): ${res.out}`);
  return res.out;
}

async function main() {
  await enterUserNamespace();
  const [cmd, state, ...rest] = process.argv.slice(2);
  if (cmd === 'run-rootfs') {
    process.stdout.write(await runSh(rest[0], state, 'echo ok; ls /bin | wc -l; id -u'));
    return;
  }
  const sn = await openSnapshotter(state, rest[0] as 'native');
  if (cmd === 'commit-exec') {
    const img = (await resolveStoredImage(state, rest[1]))!;
    const top = await unpackResolved(state, sn, img);
    const id = await sn.prepare(top, rest[2]);
    const m = await sn.mount(id);
    fs.writeFileSync(path.join(m.rootfs, 'built'), 'x'.repeat(100000));
    await m.release();
    process.stdout.write(`${await sn.commit(id, rest[2])}\n`);
  } else if (cmd === 'hold') {
    const m = await sn.mount(rest[1]);
    process.stdout.write('READY\n');
    await new Promise<void>((resolve) => {
      process.stdin.on('end', resolve);
      process.stdin.resume();
    });
    await m.release();
  } else if (cmd === 'derive') {
    const [, image, newName, ociDir] = rest;
    const img = (await resolveStoredImage(state, image))!;
    const top = await unpackResolved(state, sn, img);
    const id = await sn.prepare(top, 'mount / from exec derive');
    const m = await sn.mount(id);
    await runSh(
      m.rootfs,
      state,
      [
        'mkdir -p /home/bob/sub /tmp && chmod 1777 /tmp',
        'echo hello > /home/bob/sub/file && chmod 0640 /home/bob/sub/file',
        'ln -s sub/file /home/bob/link && ln /home/bob/sub/file /home/bob/hard',
        'chown -R 1000:1000 /home/bob',
        'rm -f /bin/vi /data/gone/b',
        'rm -rf /opq && mkdir /opq && echo new > /opq/new',
        'chmod 4755 /bin/busybox',
        'mkfifo /fifo',
      ].join(' && '),
    );
    await m.release();
    const committed = await sn.commit(id, 'mount / from exec derive');
    const content = new ContentStore(state);
    const dr = await sn.diffRoot(committed);
    const ingest = content.ingest();
    const blob = await createLayerBlob(writeLayer(sn.changes(committed), dr.rootfs, { sourceDateEpoch: 0, format: sn.diskFormat }), 'gzip', ingest.stream as Writable);
    await ingest.commit();
    await dr.release();
    const config: ImageConfig = {
      ...img.config,
      rootfs: { type: 'layers', diff_ids: [...img.config.rootfs.diff_ids, blob.diffId] },
      history: [...(img.config.history ?? []), { created_by: 'derive' }],
    };
    const cfgBuf = Buffer.from(JSON.stringify(config));
    const cfgDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: sha(cfgBuf), size: cfgBuf.length };
    await content.writeBytes(cfgBuf, { digest: cfgDesc.digest });
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: cfgDesc,
      layers: [...img.manifest.layers, { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }],
    };
    const mBuf = Buffer.from(JSON.stringify(manifest));
    const mDesc: Descriptor = { mediaType: MediaType.OciManifest, digest: sha(mBuf), size: mBuf.length };
    await content.writeBytes(mBuf, { digest: mDesc.digest });
    await new ImageStore(state).put(normalizeName(newName), mDesc);
    // The same image as an OCI layout for umoci.
    fs.mkdirSync(path.join(ociDir, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(ociDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    for (const d of [mDesc.digest, cfgDesc.digest, ...manifest.layers.map((l) => l.digest)]) {
      fs.copyFileSync(content.blobPath(d), path.join(ociDir, 'blobs', 'sha256', d.slice(7)));
    }
    fs.writeFileSync(
      path.join(ociDir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ ...mDesc, annotations: { 'org.opencontainers.image.ref.name': 'derived' } }] }),
    );
    process.stdout.write(JSON.stringify({ committed, blob }) + '\n');
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
}

function sha(b: Buffer): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
