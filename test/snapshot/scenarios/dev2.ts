import * as fs from 'node:fs';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { openSnapshotter, unpackImage } from '../../../lib/snapshot/index';
import { runContainer } from '../../../lib/exec/run';
import { makeBusyboxImage } from '../../fixtures/images';
import { ContentStore } from '../../../lib/content/store';

async function main() {
  await enterUserNamespace();
  const [state, backend, net] = process.argv.slice(2);
  const img = await makeBusyboxImage({ extraFiles: { '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n', '/etc/group': 'root:x:0:\n' } });
  await img.writeToStore(state, 'busybox');
  const sn = await openSnapshotter(state, backend as 'auto');
  const manifest = JSON.parse((await new ContentStore(state).readBytes(img.manifest.digest)).toString());
  const top = await unpackImage(state, sn, manifest, img.config);
  const id = await sn.prepare(top, 'test');
  const m = await sn.mount(id);
  const t0 = Date.now();
  const res = await runContainer({
    rootfs: m.rootfs, args: ['/bin/sh', '-c', process.argv[5] ?? 'echo hi > /x; adduser -D -u 1000 bob; mkdir -p /home/bob/d && touch /home/bob/d/f && chown -R bob /home/bob; id; cat /proc/self/status | grep -i cap; ls /dev; ip link 2>/dev/null || ls /sys/class/net; hostname; cat /etc/hosts; ulimit -n; ps; echo done'],
    env: [], cwd: '/', user: 'root', network: (net as 'none') ?? 'default', mounts: [], stateDir: state,
    onOutput: (s, c) => process.stdout.write(`[${s}] ${c}`),
  });
  console.log('exit', res, Date.now() - t0, 'ms');
  await m.release();
  for await (const c of sn.changes(id)) console.log(JSON.stringify(c));
  console.log(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('snapshots')));
}
main().catch((e) => { console.error(e); process.exit(1); });
