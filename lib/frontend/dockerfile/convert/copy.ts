// COPY and ADD (BuildKit's dispatchCopy): one file step whose copy actions
// read from the build context, a --from stage or image, an http(s) download,
// a git checkout or an inline heredoc document; --chown/--chmod/--parents/
// --exclude/--link applied; the history line BuildKit writes.

import type { ChownSpec, FileAction, Ref } from '../../../graph/types';
import { ShellExpansionError, locateShellError } from '../errors';
import type { CopyCommand } from '../instructions/commands';
import { cleanPath, destIsDir, httpFilename, isHttpUrl, joinPath, parseChown, parseGitUrl, resolveAgainst, splitParents, validChmod } from '../paths';
import { expandWord } from '../shell';
import { checkIgnoredSource } from './checks';
import type { Converter } from './converter';
import { type Source, source } from './from';
import { type StageState, commitToHistory, stepName } from './stage';

type CopyAction = Extract<FileAction, { op: 'copy' }>;

export async function dispatchCopy(cv: Converter, st: StageState, cmd: CopyCommand): Promise<void> {
  const node = cmd.node;
  const isAdd = cmd.keyword === 'ADD';
  const kw = cmd.keyword;
  const env = st.env;
  const excludes = cmd.exclude.map((e) => cv.expand(node, e, env, st));

  let chown: ChownSpec | undefined;
  const chownText = cmd.chown !== undefined ? cv.expand(node, cmd.chown, env, st) : undefined;
  if (chownText) {
    chown = parseChown(chownText);
    // `--chown=app:` (nothing after the colon): BuildKit's llb.WithUser reads the empty
    // group as id 0, so the files get app's uid and group 0, not app's primary group.
    if (chownText.endsWith(':') && chown.group === undefined) chown.group = '0';
  }
  let chmod: string | undefined;
  if (cmd.chmod !== undefined) {
    chmod = cv.expand(node, cmd.chmod, env, st);
    if (chmod === '') chmod = undefined;
    else if (!validChmod(chmod)) {
      const msg = /^[0-9]+$/.test(chmod) || !/[ugoa+=,-]/.test(chmod)
        ? `invalid chmod parameter: '${chmod}'. it should be octal string and between 0 and 07777`
        : `invalid chmod parameter: '${chmod}'`;
      throw cv.err(node, msg, 'use octal (0755) or symbolic (u+x,g-w) permissions');
    }
  }
  const checksum = cmd.checksum !== undefined ? cv.expand(node, cmd.checksum, env, st) || undefined : undefined;

  const destWritten = cv.expand(node, cmd.dest, env, st);
  const cwd = st.img.config?.WorkingDir || '/';
  let dest = resolveAgainst(cwd, destWritten);
  if (destIsDir(destWritten) && !dest.endsWith('/')) dest += '/';

  // Paths expand, in the exec form too (BuildKit's SourcesAndDest.Expand); heredocs stay documents.
  const srcs = cmd.sources.map((s) => ('path' in s ? { path: cv.expand(node, s.path, env, st) } : s));
  if (srcs.length > 1 && !destIsDir(destWritten)) {
    throw cv.err(
      node,
      `When using ${kw} with more than one source file, the destination must be a directory and end with a /`,
      `write the destination as ${destWritten}/`,
    );
  }
  if (checksum !== undefined) {
    if (srcs.length !== 1) throw cv.err(node, "checksum can't be specified for multiple sources");
    const one = srcs[0];
    if (!('path' in one) || !(isHttpUrl(one.path) || parseGitUrl(one.path))) {
      throw cv.err(node, 'checksum requires HTTP(S) or Git sources', 'drop --checksum, or use it with a URL or git source');
    }
    const bad = parseGitUrl(one.path) ? undefined : digestProblem(checksum);
    if (bad) throw cv.err(node, `${bad}: ${checksum}`, 'write --checksum=sha256:<64 hex digits>');
  }
  if (cmd.parents && srcs.some((s) => 'path' in s && isHttpUrl(s.path))) {
    throw cv.err(node, '--parents cannot be used with URL sources');
  }

  const from: Source | undefined = cmd.from !== undefined ? await source(cv, st, node, cmd.from, 'from') : undefined;

  const name = stepName(st, cv.displayText(node, env));
  // Inputs of the file step besides the stage's own filesystem (input 0 when there is one).
  const extra: Ref[] = [];
  const inputOf = (r: Ref): number => {
    const base = st.ref ? 1 : 0;
    const i = extra.findIndex((x) => x.vertex === r.vertex && x.output === r.output);
    if (i >= 0) return base + i;
    extra.push(r);
    return base + extra.length - 1;
  };
  const actions: FileAction[] = [];
  const historySources: string[] = [];
  const historyHeredocs: string[] = [];
  // One named file (a heredoc, a download) or a whole tree (a git checkout): no
  // wildcards, no symlink following, copied as the source says.
  const exactCopy = (src: Ref, srcPath: string, attemptUnpack = false): CopyAction => ({
    op: 'copy',
    src: inputOf(src),
    srcPaths: [srcPath],
    dest,
    chown,
    chmod,
    followSymlinks: false,
    dirCopyContents: false,
    createDestPath: true,
    allowWildcard: false,
    allowEmptyWildcard: false,
    attemptUnpack,
  });

  for (const s of srcs) {
    if ('heredoc' in s) {
      const h = s.heredoc;
      let data = h.content;
      if (h.expand) {
        try {
          data = expandHeredoc(data, env);
        } catch (e) {
          if (e instanceof ShellExpansionError) throw locateShellError(e, { file: cv.file, line: node.startLine, snippet: node.original });
          throw e;
        }
      }
      actions.push(exactCopy(cv.inlineDocument(st, h.name, 0o644, data), '/' + h.name));
      historyHeredocs.push(`<<${h.name}`);
      continue;
    }
    const src = s.path;
    historySources.push(src);
    if (src === '') throw cv.err(node, `${kw} source can not be empty`);
    if (!from && isHttpUrl(src) && !parseGitUrl(src)) {
      if (!isAdd) throw cv.err(node, "source can't be a URL for COPY", 'use ADD to download a URL');
      const filename = httpFilename(src);
      const http = cv.b.add({ kind: 'http', name, location: cv.location(node), inputs: [], url: src, filename, ...(checksum !== undefined ? { checksum } : {}) });
      actions.push(exactCopy(http, '/' + filename, cmd.unpack === true));
      continue;
    }
    const git = !from ? parseGitUrl(src) : null;
    if (git) {
      if (!isAdd) throw cv.err(node, "source can't be a git ref for COPY", 'use ADD to fetch a git repository');
      if (git.problem) throw cv.err(node, git.problem, 'give the ref once: #ref:subdir, or ?ref=/?branch=/?tag=/?commit=/?subdir=');
      if (git.commit !== undefined && checksum !== undefined && git.commit !== checksum) {
        throw cv.err(node, `ref conflicts: --checksum=${checksum} and commit=${git.commit}`);
      }
      const gitSum = checksum ?? git.commit;
      const gv = cv.b.add({
        kind: 'git',
        name,
        location: cv.location(node),
        inputs: [],
        remote: git.remote,
        ...(git.ref ? { ref: git.ref } : {}),
        ...(gitSum !== undefined ? { checksum: gitSum } : {}),
        ...(git.subdir ? { subdir: git.subdir } : {}),
        ...(cmd.keepGitDir ? { keepGitDir: true } : {}),
      });
      actions.push(exactCopy(gv, '/'));
      continue;
    }
    // A local path: in the context, or in the --from stage/image.
    if (!from) checkIgnoredSource(cv, node, isAdd ? 'Add' : 'Copy', src);
    const parents = cmd.parents ? splitParents(src) : undefined;
    let srcRef: Ref | null;
    if (from) srcRef = from.kind === 'stage' ? from.st.ref : from.ref;
    else srcRef = cv.contextRef(parents ? joinPath(parents.dir, parents.pattern) : src);
    const action: CopyAction = {
      op: 'copy',
      src: inputOf(srcRef ?? cv.scratchRef()),
      srcPaths: [cleanPath('/' + src)],
      dest,
      chown,
      chmod,
      followSymlinks: true,
      dirCopyContents: true,
      createDestPath: true,
      allowWildcard: true,
      allowEmptyWildcard: true,
      attemptUnpack: isAdd && cmd.unpack !== false,
    };
    if (parents) {
      action.srcPaths = [parents.dir];
      action.includePatterns = [parents.pattern];
      action.parents = true;
    }
    if (excludes.length) action.excludePatterns = excludes;
    actions.push(action);
  }
  st.ref = cv.fileOp(st, node, name, actions, extra, cmd.link);
  // BuildKit's history line: keyword, --parents/--chown/--chmod as given, sources, destination.
  const flagsText = [cmd.parents ? '--parents' : '', chownText ? `--chown=${chownText}` : '', chmod ? `--chmod=${chmod}` : ''].filter(Boolean);
  commitToHistory(st, [kw, ...flagsText, ...historySources, ...historyHeredocs, destWritten].join(' '), 'step', cv.epoch);
}

// Expands an unquoted-delimiter heredoc body the way BuildKit does: variables
// expand everywhere (quotes are plain characters, as in a shell heredoc) and
// backslash escapes the next character. Quotes are escaped so the word lexer
// keeps them literally.
function expandHeredoc(body: string, env: ReadonlyMap<string, string>): string {
  let w = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\' && i + 1 < body.length) {
      w += c + body[++i];
    } else if (c === "'" || c === '"') {
      w += '\\' + c;
    } else w += c;
  }
  return expandWord(w, env, { escapeToken: '\\' }).value;
}

// What go-digest's Parse (BuildKit reads ADD --checksum of a URL with it) says of `d`:
// undefined when it is a digest of an algorithm BuildKit has (sha256, sha384, sha512).
const DIGEST_HEX: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
export function digestProblem(d: string): string | undefined {
  const i = d.indexOf(':');
  if (i <= 0 || i + 1 === d.length) return 'invalid checksum digest format';
  const algo = d.slice(0, i);
  const encoded = d.slice(i + 1);
  const size = DIGEST_HEX[algo];
  if (size === undefined) {
    return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(d) ? 'unsupported digest algorithm' : 'invalid checksum digest format';
  }
  if (encoded.length !== size) return 'invalid checksum digest length';
  return /^[a-f0-9]+$/.test(encoded) ? undefined : 'invalid checksum digest format';
}
