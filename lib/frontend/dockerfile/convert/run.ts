// RUN: the command line (exec form, shell form, heredoc scripts), the
// environment and user it runs with, and its --mount flags resolved into
// graph mounts (bind, cache, tmpfs, secret, ssh) — BuildKit's dispatchRun.

import type { ExecMount, ExecVertex, Ref } from '../../../graph/types';
import { runCommandString } from '../args';
import { DEFAULT_SHELL, ensureConfig } from '../config';
import { DockerfileError } from '../errors';
import type { RunCommand } from '../instructions/commands';
import { mountField, resolveMount, type MountSpec } from '../instructions/mounts';
import { parseHeredocWord } from '../heredoc';
import { baseName, cleanPath } from '../paths';
import type { Converter } from './converter';
import { source } from './from';
import { type StageState, commitToHistory, stepName } from './stage';

export async function dispatchRun(cv: Converter, st: StageState, cmd: RunCommand): Promise<void> {
  const node = cmd.node;
  const cfg = ensureConfig(st.img);
  let args: string[];
  // Secrets exposed as env vars show as **** in the progress name (BuildKit does this).
  const shownEnv = new Map(st.env);
  for (const m of cmd.mounts) {
    const env = mountField(m, 'env');
    if (env && mountField(m, 'type')?.toLowerCase() === 'secret') shownEnv.set(env, '****');
  }
  let nameSuffix = '';
  const extraMounts: { spec: ExecMount; ref: Ref }[] = [];
  if (!cmd.prependShell) {
    args = [...cmd.cmdLine];
  } else {
    let line = cmd.cmdLine.join(' ');
    if (cmd.heredocs.length) {
      const only = parseHeredocWord(line.trim());
      const h0 = cmd.heredocs[0];
      if (only && cmd.heredocs.length === 1) {
        if (h0.content.startsWith('#!')) {
          // A script with a shebang runs as a file (BuildKit mounts it at /dev/pipes/).
          const file = cv.inlineDocument(st, h0.name, 0o755, h0.content);
          extraMounts.push({ spec: { target: '/dev/pipes/', type: 'bind', source: '/', readonly: true }, ref: file });
          line = '/dev/pipes/' + h0.name;
        } else {
          line = h0.content;
        }
        nameSuffix = ` (${summarizeHeredoc(h0.content)})`;
      } else {
        for (const h of cmd.heredocs) line += '\n' + h.content + h.name;
      }
    }
    const shell = cfg.Shell?.length ? cfg.Shell : DEFAULT_SHELL;
    args = [...shell, line];
  }

  const cwd = cfg.WorkingDir || '/';
  const inputs: Ref[] = [];
  let rootfs = -1;
  if (st.ref) {
    inputs.push(st.ref);
    rootfs = 0;
  }
  const inputIndex = (r: Ref): number => {
    const i = inputs.findIndex((x) => x.vertex === r.vertex && x.output === r.output);
    if (i >= 0) return i;
    inputs.push(r);
    return inputs.length - 1;
  };
  const mounts: ExecMount[] = [];
  let sshCount = 0;
  for (const flag of cmd.mounts) {
    let spec: MountSpec;
    try {
      spec = resolveMount(flag, (w) => cv.expand(node, w, st.env));
    } catch (e) {
      if (e instanceof DockerfileError) throw e;
      throw cv.err(node, `--mount=${flag.raw}: ${(e as Error).message}`, 'see "RUN --mount" in the Dockerfile reference');
    }
    mounts.push(await runMount(cv, st, cmd, spec, cwd, inputIndex, sshCount));
    if (spec.type === 'ssh') sshCount++;
  }
  for (const m of extraMounts) mounts.push({ ...m.spec, input: inputIndex(m.ref) });

  const env = [...st.env].map(([k, v]) => `${k}=${v}`);
  const def: Omit<ExecVertex, 'id'> = {
    kind: 'exec',
    name: stepName(st, cv.displayText(node, shownEnv, nameSuffix)),
    location: cv.location(node),
    inputs,
    platform: st.platform,
    rootfs,
    args,
    env,
    cwd,
    user: cfg.User ?? '',
    ...(sandboxHostname(cv) ? { hostname: sandboxHostname(cv) } : {}),
    network: cmd.network,
    security: cmd.security,
    mounts,
    ...(cv.proxy.length ? { proxyEnv: cv.proxy } : {}),
    ...(cv.opts.noCache ? { ignoreCache: true } : {}),
    ...(cv.noCacheStage(st) ? { noCacheStage: true } : {}),
  };
  st.ref = cv.b.add(def);
  commitToHistory(st, `RUN ${runCommandString(args, st.declared, st.env)}`, 'step', cv.epoch);
}

// One --mount as the exec vertex takes it: target resolved against the
// working directory, its source an input of the vertex, BuildKit's defaults.
async function runMount(
  cv: Converter,
  st: StageState,
  cmd: RunCommand,
  spec: MountSpec,
  cwd: string,
  inputIndex: (r: Ref) => number,
  sshIndex: number,
): Promise<ExecMount> {
  const node = cmd.node;
  // As BuildKit: a relative or missing target is joined to the working
  // directory (so no target at all mounts there); the root is refused.
  const written = spec.target ?? '';
  const target = written.startsWith('/') ? cleanPath(written) : cleanPath('/' + cwd + '/' + written);
  if (target === '/' && spec.type !== 'secret' && spec.type !== 'ssh') {
    throw cv.err(node, `invalid mount target "${target}"`, 'give the mount a target below /: target=<path>');
  }
  const fromRef = async (): Promise<Ref | null> => {
    if (spec.from === undefined || spec.from === '') return null;
    const src = await source(cv, st, node, spec.from, 'mount', spec.target ?? '');
    return src.kind === 'stage' ? src.st.ref ?? cv.scratchRef() : src.ref;
  };
  switch (spec.type) {
    case 'bind': {
      const m: ExecMount = { target, type: 'bind', readonly: spec.readonly, source: cleanPath('/' + (spec.source ?? '/')) };
      if (spec.from === undefined || spec.from === '') {
        m.input = inputIndex(cv.contextRef(spec.source ?? '.'));
      } else {
        const r = await fromRef();
        if (r) m.input = inputIndex(r);
      }
      return m;
    }
    case 'cache': {
      const m: ExecMount = {
        target,
        type: 'cache',
        readonly: spec.readonly,
        // BuildKit: path.Clean of the target as written, under --build-arg BUILDKIT_CACHE_MOUNT_NS when given.
        cacheId: cacheNamespaced(cv, spec.id || cleanPath(written)),
        sharing: spec.sharing ?? 'shared',
      };
      if (spec.mode !== undefined) m.mode = spec.mode;
      if (spec.uid !== undefined) m.uid = spec.uid;
      if (spec.gid !== undefined) m.gid = spec.gid;
      const r = await fromRef();
      if (r) {
        m.input = inputIndex(r);
        m.source = cleanPath('/' + (spec.source ?? '/'));
      }
      return m;
    }
    case 'tmpfs': {
      const m: ExecMount = { target, type: 'tmpfs' };
      if (spec.size !== undefined) m.size = spec.size;
      return m;
    }
    case 'secret': {
      let id = spec.id ?? '';
      if (spec.source) id = spec.source;
      if (!id) id = spec.target ? baseName(spec.target) : '';
      if (!id) throw cv.err(node, 'secret mount needs an id, source or target', 'write --mount=type=secret,id=<id>');
      // With env= and no target the secret is only an environment variable.
      const t = spec.target ? target : spec.env !== undefined ? '' : `/run/secrets/${baseName(id)}`;
      cv.secrets.add(id);
      const m: ExecMount = { target: t, type: 'secret', secretId: id, required: spec.required, mode: spec.mode ?? 0o400, uid: spec.uid ?? 0, gid: spec.gid ?? 0 };
      if (spec.env !== undefined) m.env = spec.env;
      return m;
    }
    case 'ssh': {
      const id = spec.id || 'default';
      cv.ssh.add(id);
      return {
        target: spec.target ? target : `/run/buildkit/ssh_agent.${sshIndex}`,
        type: 'ssh',
        sshId: id,
        required: spec.required,
        mode: spec.mode ?? 0o600,
        uid: spec.uid ?? 0,
        gid: spec.gid ?? 0,
      };
    }
  }
}

// The progress suffix of a heredoc RUN: its first line, "..." when there are more.
function summarizeHeredoc(doc: string): string {
  const lines = doc.trim().replace(/\r\n/g, '\n').split('\n');
  return lines[0] + (lines.length > 1 ? '...' : '');
}

// --build-arg BUILDKIT_SANDBOX_HOSTNAME: the RUN containers' hostname (and its /etc/hosts
// line), as BuildKit's dockerui takes it; without it the executor's buildkitsandbox.
function sandboxHostname(cv: Converter): string | undefined {
  return cv.buildArgs.BUILDKIT_SANDBOX_HOSTNAME || undefined;
}

// --build-arg BUILDKIT_CACHE_MOUNT_NS scopes every cache mount id, so builds given
// different namespaces never share a cache.
function cacheNamespaced(cv: Converter, id: string): string {
  const ns = cv.buildArgs.BUILDKIT_CACHE_MOUNT_NS;
  return ns ? `${ns}/${id}` : id;
}
