import * as fs from 'node:fs';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { openSnapshotter, unpackImage } from '../../../lib/snapshot/index';
import { makeBusyboxImage } from '../../fixtures/images';
import { ContentStore } from '../../../lib/content/store';

async function main() {
  await enterUserNamespace();
  const [state, backend] = process.argv.slice(2);
  const img = await makeBusyboxImage({ extraFiles: { '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' } });
  await img.writeToStore(state, 'busybox');
  const sn = await openSnapshotter(state, backend as 'auto');
  const manifest = JSON.parse((await new ContentStore(state).readBytes(img.manifest.digest)).toString());
  const t0 = Date.now();
  const top = await unpackImage(state, sn, manifest, img.config, (e) => console.error(JSON.stringify(e)));
  console.log('unpacked', top, sn.backend, Date.now() - t0, 'ms');
  const id = await sn.prepare(top, 'test');
  const m = await sn.mount(id);
  console.log(fs.readdirSync(m.rootfs + '/bin').length, fs.readFileSync(m.rootfs + '/etc/passwd', 'utf8'));
  fs.writeFileSync(m.rootfs + '/x', 'hi');
  fs.rmSync(m.rootfs + '/etc/passwd');
  await m.release();
  for await (const c of sn.changes(id)) console.log(c);
  const c = await sn.commit(id, 'mount / from exec test');
  console.log('committed', c, await sn.usage(c));
  console.log((await sn.list()).map((s) => `${s.id} ${s.kind} ${s.description}`));
  console.log(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('snapshots')));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
