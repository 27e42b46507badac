// Where a build writes on the user's disk: -o dest=FILE archives, -o type=local
// directories, --iidfile and --metadata-file. The destinations are checked before the
// build starts (a typo in a path should not cost the whole build), and a write that
// fails later names the path it could not write, never the tar stream's own complaint.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { hostErrorClass, HostError, isErrno, UsageError } from '../util/errors';
import { errnoReason, makeDirs } from '../util/fsutil';
import type { BuildOptions, OutputSpec } from './options';

// A file output is written to `<file>.<pid>.tmp` and renamed when complete.
const tmpOf = (file: string): string => `${file}.${process.pid}.tmp`;

// Every destination of `outputs`, --iidfile and --metadata-file: parents created,
// files and directories writable (probed by creating what the build will create).
export async function checkDestinations(opts: Pick<BuildOptions, 'iidfile' | 'metadataFile'>, outputs: OutputSpec[], cwd: string): Promise<void> {
  for (const o of outputs) {
    if (o.type === 'local') await checkDirDest(path.resolve(cwd, o.dest), `--output type=local dest`);
    else if ((o.type === 'docker' || o.type === 'oci') && o.layoutDir) await checkDirDest(path.resolve(cwd, o.dest!), `--output type=${o.type},tar=false dest`);
    else if ((o.type === 'tar' || o.type === 'docker' || o.type === 'oci') && o.dest) {
      await checkFileDest(path.resolve(cwd, o.dest), `--output type=${o.type} dest`);
    }
  }
  if (opts.iidfile) await checkFileDest(path.resolve(cwd, opts.iidfile), '--iidfile');
  if (opts.metadataFile) await checkFileDest(path.resolve(cwd, opts.metadataFile), '--metadata-file');
}

async function checkFileDest(file: string, flag: string): Promise<void> {
  await makeDirs(path.dirname(file), `directory for ${flag}`);
  const st = await fsp.stat(file).catch(() => null);
  if (st?.isDirectory()) throw new UsageError(`${flag} ${file} is a directory`, { hint: `name a file to write, e.g. ${path.join(file, 'out.tar')}` });
  try {
    await (await fsp.open(tmpOf(file), 'w', 0o644)).close();
  } catch (err) {
    throw writeError(file, flag, err);
  } finally {
    await fsp.rm(tmpOf(file), { force: true });
  }
}

async function checkDirDest(dir: string, flag: string): Promise<void> {
  await makeDirs(dir, `directory for ${flag}`);
  try {
    await fsp.access(dir, fs.constants.W_OK);
  } catch (err) {
    throw writeError(dir, flag, err);
  }
}

// A failed write to a destination as the catalogue error naming it.
export function writeError(file: string, flag: string, err: unknown): Error {
  const Cls = hostErrorClass(err);
  const why = errnoReason(err);
  if (Cls === HostError) return new HostError(`cannot write ${flag} ${file}: ${why}`, { hint: 'choose a path you may write to, or fix the permissions', cause: err });
  if (Cls) return new Cls(`cannot write ${flag} ${file}: ${why}`, { hint: 'free space on that disk, or write somewhere else', cause: err });
  if (isErrno(err, 'EISDIR') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ENOENT')) {
    return new UsageError(`cannot write ${flag} ${file}: ${why}`, { hint: 'choose another path', cause: err });
  }
  return err instanceof Error ? err : new Error(why);
}

// Streams an archive to `dest` (a file, written whole or not at all) or, without
// one, to stdout (left open: more output may follow on stderr).
export async function toDest(dest: string | undefined, io: { stdout: Writable; cwd: string }, flag: string, write: (w: Writable) => Promise<void>): Promise<void> {
  if (!dest) {
    const pt = new PassThrough();
    // stdout's own failure (its reader gone: EPIPE) ends the export with a message,
    // not as an unhandled 'error' event on the socket.
    let stdoutError: NodeJS.ErrnoException | undefined;
    const onError = (err: NodeJS.ErrnoException) => {
      stdoutError ??= err;
      pt.destroy(err);
    };
    io.stdout.on('error', onError);
    pt.pipe(io.stdout, { end: false });
    const done = new Promise<void>((resolve, reject) => {
      pt.on('end', resolve);
      pt.on('error', reject);
    });
    try {
      await Promise.all([write(pt), done]); // both observed: either may fail first
    } catch (err) {
      if (!stdoutError) throw err;
      if (stdoutError.code === 'EPIPE') {
        throw new HostError(`cannot write to stdout (${flag.replace(/ dest$/, '')}): its reader closed the pipe before the archive was complete (EPIPE)`, {
          hint: 'the command reading img\'s output exited early; check it, or pass dest=FILE in --output',
          cause: stdoutError,
        });
      }
      throw writeError('/dev/stdout', flag, stdoutError);
    } finally {
      io.stdout.off('error', onError);
      pt.unpipe(io.stdout);
    }
    return;
  }
  const file = path.resolve(io.cwd, dest);
  const tmp = tmpOf(file);
  const out = fs.createWriteStream(tmp, { mode: 0o644 });
  // The file's own error (EACCES, ENOSPC) is the one to report: the writer upstream
  // only sees its stream torn down.
  let fileError: unknown;
  out.on('error', (err) => (fileError ??= err));
  try {
    await write(out);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw fileError ? writeError(file, flag, fileError) : err;
  }
}

// --iidfile, --metadata-file: the whole content at once.
export async function writeDestFile(file: string, flag: string, data: string): Promise<void> {
  await makeDirs(path.dirname(file), `directory for ${flag}`);
  try {
    await fsp.writeFile(file, data);
  } catch (err) {
    throw writeError(file, flag, err);
  }
}
