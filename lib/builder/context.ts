// Where a build's files come from: a directory, `-` (a tar or a Dockerfile on
// stdin), an http(s) tarball, or a git URL (cloned with the `git` program).
// Resolves the Dockerfile (-f, `-f -`) and its .dockerignore.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer, decompressArchive, detectArchiveCompression } from '../archive/index';
import { ImgError, isErrno } from '../util/errors';

export interface LoadedContext {
  dir: string | null; // the context directory; null when only a Dockerfile was given
  dockerfileName: string; // for messages and the frontend (e.g. "Dockerfile")
  dockerfileText: string;
  dockerignoreText: string | null;
  description: string; // what the user passed, for messages
  cleanup(): Promise<void>;
}

export interface ContextInput {
  context: string; // PATH | URL | '-'
  file?: string; // -f; '-' = stdin
  stdin?: Readable;
  cwd?: string;
  tmpDir?: string; // where downloaded/extracted contexts go
}

// Looks like a git repository URL (docker's rules).
export function isGitUrl(s: string): boolean {
  if (/^git@[^:]+:/.test(s)) return true;
  if (/^(git|ssh|git\+ssh):\/\//i.test(s)) return true;
  if (/^https?:\/\//i.test(s)) {
    const u = s.split('#')[0].replace(/[?].*$/, '');
    return u.endsWith('.git') || /#/.test(s) && !/\.(tar|tgz|tar\.gz|tar\.bz2|tar\.xz|tar\.zst)$/i.test(u);
  }
  return /^github\.com\/[^/]+\/[^/]+/.test(s);
}

export async function loadContext(input: ContextInput): Promise<LoadedContext> {
  const cwd = input.cwd ?? process.cwd();
  const stdin = input.stdin ?? process.stdin;
  if (input.context === '-' && input.file === '-') {
    throw new ImgError('cannot read both the context and the Dockerfile from stdin', {
      hint: 'pass the context as a directory, or the Dockerfile with -f FILE',
    });
  }
  const temps: string[] = [];
  const cleanup = async () => {
    for (const t of temps) await fsp.rm(t, { recursive: true, force: true });
  };
  try {
    let dir: string | null;
    let stdinDockerfile: string | null = null;
    let remote = false;
    if (input.context === '-') {
      const data = await readAll(stdin);
      if (isTarOrCompressed(data)) {
        dir = await makeTemp(input.tmpDir, temps);
        await extractTar(Readable.from([data]), dir, 'stdin');
        remote = true; // -f names a file inside the archive
      } else {
        dir = null;
        stdinDockerfile = data.toString('utf8');
      }
    } else if (isGitUrl(input.context)) {
      dir = await cloneGit(input.context, await makeTemp(input.tmpDir, temps));
      remote = true;
    } else if (/^https?:\/\//i.test(input.context)) {
      const got = await download(input.context, await makeTemp(input.tmpDir, temps));
      dir = got.dir;
      stdinDockerfile = got.dockerfile;
      remote = true;
    } else {
      dir = path.resolve(cwd, input.context);
      let st: fs.Stats;
      try {
        st = await fsp.stat(dir);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          throw new ImgError(`unable to prepare context: path "${input.context}" not found`, { hint: 'pass an existing directory (e.g. `.`), a URL, or - for stdin' });
        }
        throw err;
      }
      if (!st.isDirectory()) {
        throw new ImgError(`unable to prepare context: "${input.context}" is not a directory`, { hint: 'pass the directory holding your files; name the Dockerfile with -f' });
      }
    }

    // The Dockerfile: -f (relative to cwd for local contexts, to the context root for
    // remote ones), stdin, or <context>/Dockerfile.
    let name = 'Dockerfile';
    let text: string;
    let dockerfilePath: string | null = null;
    if (input.file === '-') {
      text = (await readAll(stdin)).toString('utf8');
      name = 'Dockerfile';
    } else if (stdinDockerfile !== null && !input.file) {
      text = stdinDockerfile;
    } else {
      if (input.file) dockerfilePath = remote || !dir ? path.resolve(dir ?? cwd, input.file) : path.resolve(cwd, input.file);
      else {
        dockerfilePath = path.join(dir!, 'Dockerfile');
        if (!fs.existsSync(dockerfilePath) && fs.existsSync(path.join(dir!, 'dockerfile'))) dockerfilePath = path.join(dir!, 'dockerfile');
      }
      try {
        text = await fsp.readFile(dockerfilePath, 'utf8');
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'EISDIR')) {
          throw new ImgError(`unable to read Dockerfile: ${dockerfilePath} not found`, {
            hint: input.file ? 'check the -f path' : 'add a Dockerfile to the context, or name one with -f',
          });
        }
        throw err;
      }
      name = path.basename(dockerfilePath);
    }

    // .dockerignore: <Dockerfile>.dockerignore next to the Dockerfile wins over <context>/.dockerignore.
    let ignore: string | null = null;
    const candidates: string[] = [];
    if (dockerfilePath) candidates.push(`${dockerfilePath}.dockerignore`);
    if (dir) candidates.push(path.join(dir, '.dockerignore'));
    for (const c of candidates) {
      try {
        ignore = await fsp.readFile(c, 'utf8');
        break;
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    return { dir, dockerfileName: name, dockerfileText: text, dockerignoreText: ignore, description: input.context, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function makeTemp(base: string | undefined, temps: string[]): Promise<string> {
  const root = base ?? os.tmpdir();
  await fsp.mkdir(root, { recursive: true });
  const dir = path.join(root, `img-context-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  temps.push(dir);
  return dir;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

function isTarOrCompressed(b: Buffer): boolean {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true; // gzip
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return true; // zstd
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return true;
  if (b.length >= 6 && b[0] === 0xfd && b.toString('latin1', 1, 5) === '7zXZ') return true;
  return b.length >= 262 && b.toString('latin1', 257, 262) === 'ustar';
}

// Extracts a (possibly compressed) tar with the archive room's safe extractor.
async function extractTar(src: Readable, dir: string, what: string): Promise<void> {
  // Peek at the first bytes for the compression.
  const it = src[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Buffer);
  const rest = Readable.from(
    (async function* () {
      if (head.length) yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value as Buffer;
      }
    })(),
  );
  const c = detectArchiveCompression(head);
  const tar = c === 'none' ? rest : rest.pipe(decompressArchive(c));
  try {
    await applyLayer(tar, { root: dir, sameOwner: false });
  } catch (err) {
    throw new ImgError(`cannot extract the build context from ${what}: ${(err as Error).message}`, {
      hint: 'send a tar archive (optionally gzip/zstd compressed) or a Dockerfile',
      cause: err,
    });
  }
}

async function download(url: string, dir: string): Promise<{ dir: string | null; dockerfile: string | null }> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    throw new ImgError(`cannot download build context ${url}: ${(err as Error).message}`, { hint: 'check the URL and your network', cause: err });
  }
  if (!res.ok || !res.body) {
    throw new ImgError(`cannot download build context ${url}: HTTP ${res.status}`, { hint: 'check the URL' });
  }
  const buf = Buffer.from(await res.arrayBuffer());
  if (isTarOrCompressed(buf)) {
    await extractTar(Readable.from([buf]), dir, url);
    return { dir, dockerfile: null };
  }
  // A plain text body is a Dockerfile (docker's remote Dockerfile context).
  return { dir: null, dockerfile: buf.toString('utf8') };
}

async function cloneGit(spec: string, dir: string): Promise<string> {
  // URL#ref:subdir
  const hash = spec.indexOf('#');
  const remote = hash >= 0 ? spec.slice(0, hash) : spec;
  const frag = hash >= 0 ? spec.slice(hash + 1) : '';
  const [ref, subdir] = frag.split(':');
  const run = (args: string[], cwd?: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('git', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('error', (e) => {
        if (isErrno(e, 'ENOENT')) reject(new ImgError('cannot use a git build context: the `git` program is not installed', { hint: 'install git (apt-get install git), or clone the repository yourself and pass its directory' }));
        else reject(e);
      });
      child.on('close', (code) =>
        code === 0 ? resolve() : reject(new ImgError(`git ${args[0]} ${remote} failed: ${err.trim().split('\n').pop()}`, { hint: 'check the repository URL and ref' })),
      );
    });
  await run(['init', '-q', dir]);
  await run(['-C', dir, 'remote', 'add', 'origin', remote]);
  await run(['-C', dir, 'fetch', '-q', '--depth', '1', 'origin', ref || 'HEAD']);
  await run(['-C', dir, 'checkout', '-q', 'FETCH_HEAD']);
  await fsp.rm(path.join(dir, '.git'), { recursive: true, force: true });
  const out = subdir ? path.join(dir, path.posix.normalize('/' + subdir)) : dir;
  if (!fs.existsSync(out)) throw new ImgError(`subdirectory ${subdir} not found in ${remote}`, { hint: 'fix the #ref:subdir part of the URL' });
  return out;
}

