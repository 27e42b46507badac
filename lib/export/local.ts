// `-o type=local,dest=DIR`: copy the final filesystem into DIR, merging with
// what is there (files of the same name are replaced), like BuildKit's local exporter;
// multi-platform, each platform's into DIR/<os>_<arch>[_<variant>]/.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { inUserNamespace } from '../exec/userns';
import { withMounted } from '../snapshot/index';
import { resetOwners, warnSetidCleared } from '../snapshot/rootfs';
import { copyTree } from '../snapshot/sys';
import { fsPath as F, toBytes } from '../util/bytenames';
import { isErrno } from '../util/errors';
import { makeDirs } from '../util/fsutil';
import { platformDirName } from '../images/platform';
import { platformDirs, type BuildResult, type BuildResults, type ExportEnv } from './result';

export async function exportLocal(results: BuildResults, env: ExportEnv, dest: string, opts: { platformSplit?: boolean } = {}): Promise<void> {
  if (!platformDirs(results, opts.platformSplit)) return exportTree(results.platforms[0].result, env, dest);
  await checkDir(dest);
  // The platform directories as BuildKit's client receives them (fsutil's SubDirFS
  // entry): mode 0755, dated SOURCE_DATE_EPOCH, else 0.
  const mtime = env.sourceDateEpoch ?? 0;
  for (const r of results.platforms) {
    const dir = path.join(dest, platformDirName(r.platform));
    await exportTree(r.result, env, dir);
    await fsp.chmod(dir, 0o755);
    await fsp.utimes(dir, mtime, mtime);
  }
}

async function checkDir(dest: string): Promise<void> {
  await makeDirs(dest, 'directory for --output type=local dest');
}

async function exportTree(result: BuildResult, env: ExportEnv, dest: string): Promise<void> {
  await checkDir(dest);
  if (!result.snapshot) return;
  await withMounted(env.sn, result.snapshot, (rootfs) => mergeTree(toBytes(rootfs), toBytes(dest)));
  // Unprivileged, the exported files belong to the caller (namespace root), as when
  // BuildKit's client writes them; otherwise files owned by a subordinate id could
  // not even be deleted by the user who asked for them. Setuid/setgid bits go with
  // the old owners (resetOwners says why).
  if (inUserNamespace()) warnSetidCleared(await resetOwners(dest));
}

// src and dst are byte strings (util/bytenames.ts): names that are not UTF-8 are copied as they are.
async function mergeTree(src: string, dst: string): Promise<void> {
  for (const name of await fsp.readdir(F(src), { encoding: 'latin1' })) {
    const s = src + '/' + name;
    const d = dst + '/' + name;
    const sst = await fsp.lstat(F(s));
    let dst0: fs.Stats | null = null;
    try {
      dst0 = await fsp.lstat(F(d));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    if (sst.isDirectory()) {
      if (dst0?.isDirectory()) {
        await mergeTree(s, d);
        await fsp.chmod(F(d), sst.mode & 0o7777);
        await fsp.utimes(F(d), sst.atime, sst.mtime);
        continue;
      }
      if (dst0) await fsp.rm(F(d), { recursive: true, force: true });
      await copyTree(F(s), F(d));
      continue;
    }
    if (dst0) await fsp.rm(F(d), { recursive: true, force: true });
    if (sst.isSymbolicLink()) {
      await fsp.symlink(F(await fsp.readlink(F(s), { encoding: 'latin1' })), F(d));
      await fsp.lchown(F(d), sst.uid, sst.gid).catch(() => undefined);
      await fsp.lutimes(F(d), sst.atime, sst.mtime);
    } else if (sst.isFile()) {
      await fsp.copyFile(F(s), F(d));
      await fsp.chmod(F(d), sst.mode & 0o7777);
      await fsp.chown(F(d), sst.uid, sst.gid).catch(() => undefined);
      await fsp.utimes(F(d), sst.atime, sst.mtime);
    } else {
      // Devices, fifos, sockets: copyTree handles special files.
      const tmp = `${dst}/.img-copy-${process.pid}`;
      await fsp.mkdir(F(tmp));
      try {
        await copyTree(F(s), F(tmp + '/' + name));
        await fsp.rename(F(tmp + '/' + name), F(d));
      } finally {
        await fsp.rm(F(tmp), { recursive: true, force: true });
      }
    }
  }
}
