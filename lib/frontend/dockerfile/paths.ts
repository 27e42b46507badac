// Paths as the Dockerfile means them: POSIX path arithmetic (no node:path in
// the frontend), working-directory resolution, and the path rules of COPY/ADD:
// source kinds (local, http, git), --chown/--chmod values, the --parents "/./"
// pivot, destinations that name a directory, context include patterns.

import type { ChownSpec } from '../../graph/types';

// path.Clean from Go, for slash paths.
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else out.push(seg);
  }
  const s = out.join('/');
  return rooted ? '/' + s : s || '.';
}

export function joinPath(...parts: string[]): string {
  const nonEmpty = parts.filter((x) => x !== '');
  return nonEmpty.length ? cleanPath(nonEmpty.join('/')) : '';
}

export function baseName(p: string): string {
  const c = cleanPath(p);
  if (c === '/') return '/';
  const i = c.lastIndexOf('/');
  return i < 0 ? c : c.slice(i + 1);
}

export function isAbs(p: string): boolean {
  return p.startsWith('/');
}

// Resolves a path against the working directory (pathRelativeToWorkingDir).
export function resolveAgainst(workdir: string, p: string): string {
  return isAbs(p) ? cleanPath(p) : joinPath('/', workdir, p);
}

// The destination names a directory when it ends in "/" or is "." (BuildKit
// then copies into it rather than onto it).
export function destIsDir(dest: string): boolean {
  return dest === '' || dest === '.' || dest.endsWith('/') || dest.endsWith('/.');
}

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

export interface GitRef {
  remote: string;
  ref?: string;
  subdir?: string;
  commit?: string; // ?commit=: the commit the ref must resolve to (checked like --checksum)
  problem?: string; // a query BuildKit refuses: conflicting refs, an unknown key
}

// Recognizes the git URL forms ADD accepts: git@host:path, git://, ssh://,
// http(s)://...(.git), github.com/... ; with "#ref:subdir".
export function parseGitUrl(src: string): GitRef | null {
  let remote = src;
  let fragment: string | undefined;
  const hash = src.indexOf('#');
  if (hash >= 0) {
    remote = src.slice(0, hash);
    fragment = src.slice(hash + 1);
  }
  let isGit = false;
  if (/^git@[^:]+:.+/.test(remote)) isGit = true;
  else if (/^(git|ssh|git\+ssh|git\+https?):\/\//i.test(remote)) isGit = true;
  else if (/^https?:\/\//i.test(remote)) {
    const pathPart = remote.replace(/^https?:\/\/[^/]*/i, '').replace(/[?].*$/, '');
    isGit = pathPart.endsWith('.git') || pathPart.endsWith('.git/');
  }
  // A bare "github.com/o/r" is indistinguishable from a local path: local, as in BuildKit.
  if (!isGit) return null;
  const out: GitRef = { remote };
  if (fragment !== undefined && fragment !== '') {
    const colon = fragment.indexOf(':');
    const ref = colon >= 0 ? fragment.slice(0, colon) : fragment;
    const subdir = colon >= 0 ? fragment.slice(colon + 1) : '';
    if (ref) out.ref = ref;
    if (subdir) out.subdir = subdir;
  }
  // BuildKit's query form: ?ref=, ?branch= (refs/heads/), ?tag= (refs/tags/), ?commit=,
  // ?subdir=; the query is not part of the remote. A ref given twice must agree.
  const q = remote.indexOf('?');
  if (q >= 0 && !/^git@/.test(remote)) {
    out.remote = remote.slice(0, q);
    const set = (key: 'ref' | 'subdir' | 'commit', value: string) => {
      if (out[key] !== undefined && out[key] !== value) out.problem ??= `ref conflicts: ${out[key]} and ${value}`;
      out[key] = value;
    };
    for (const [key, value] of new URLSearchParams(remote.slice(q + 1))) {
      if (key === 'ref') set('ref', value);
      else if (key === 'branch') set('ref', `refs/heads/${value}`);
      else if (key === 'tag') set('ref', `refs/tags/${value}`);
      else if (key === 'commit') set('commit', value);
      else if (key === 'subdir') set('subdir', value);
      else out.problem ??= `unexpected query key ${JSON.stringify(key)} in git URL (supported: ref, branch, tag, commit, subdir)`;
    }
    // Only a commit: it is the ref too.
    if (out.commit !== undefined && out.ref === undefined) out.ref = out.commit;
  }
  return out;
}

// The file name a URL download gets: the last path element, or __unnamed__.
export function httpFilename(url: string): string {
  const noQuery = url.replace(/[?#].*$/, '');
  const pathPart = noQuery.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
  const b = pathPart === '' ? '/' : baseName(pathPart);
  let name = b === '.' || b === '/' ? '__unnamed__' : b;
  try {
    name = decodeURIComponent(name);
  } catch {
    // keep the raw form
  }
  return name;
}

// --chmod: octal (up to 0o7777) or symbolic (u+x,g-w,a=rX).
export function validChmod(s: string): boolean {
  if (/^[0-9]+$/.test(s)) return /^[0-7]+$/.test(s) && parseInt(s, 8) <= 0o7777;
  return s.split(',').every((clause) => /^[ugoa]*([-+=]([rwxXst]*|[ugo]))+$/.test(clause));
}

export function parseChown(s: string): ChownSpec {
  const i = s.indexOf(':');
  const user = i < 0 ? s : s.slice(0, i);
  const group = i < 0 ? undefined : s.slice(i + 1);
  const out: ChownSpec = {};
  if (user !== '') out.user = user;
  if (group !== undefined && group !== '') out.group = group;
  return out;
}

// --parents: "a/./b/c" copies b/c keeping that part of the path; without a
// pivot the whole relative path is kept.
export function splitParents(src: string): { dir: string; pattern: string } {
  const norm = src.startsWith('./') ? src : src;
  const i = norm.indexOf('/./');
  if (i >= 0) {
    return { dir: cleanPath('/' + norm.slice(0, i)), pattern: cleanPath(norm.slice(i + 3)) };
  }
  if (norm.startsWith('./')) return { dir: '/', pattern: cleanPath(norm.slice(2)) };
  return { dir: '/', pattern: cleanPath(norm).replace(/^\/+/, '') || '.' };
}

// What a COPY source contributes to the context's include patterns.
export function contextPattern(src: string): string {
  const c = cleanPath('/' + src).replace(/^\/+/, '');
  return c === '' ? '.' : c;
}
