// The instructions that write the image config (and, for ARG and ENV, the
// build environment): ARG, ENV, LABEL, MAINTAINER, EXPOSE, USER, WORKDIR,
// VOLUME, STOPSIGNAL, SHELL, CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD — each
// with the history entry BuildKit records. Only WORKDIR adds a graph step.

import type {
  ArgCommand, CmdCommand, EntrypointCommand, EnvCommand, ExposeCommand, HealthcheckCommand, LabelCommand,
  MaintainerCommand, OnbuildCommand, ShellCommand, StopSignalCommand, UserCommand, VolumeCommand, WorkdirCommand,
} from '../instructions/commands';
import { DEFAULT_SHELL, addEnv, ensureConfig, goQuoteSlice, healthcheckHistory, parsePortSpec, validSignal } from '../config';
import { parseChown, resolveAgainst } from '../paths';
import { checkExposeSpec, checkSecretName, checkShellForm, checkWorkdir } from './checks';
import type { Converter } from './converter';
import { type StageState, commitToHistory, stepName } from './stage';

const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);

export function dispatchArg(cv: Converter, st: StageState, cmd: ArgCommand): void {
  const parts: string[] = [];
  for (const arg of cmd.args) {
    const key = arg.key;
    checkSecretName(cv, cmd.node, 'ARG', key);
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(cv.buildArgs, key)) value = cv.buildArgs[key];
    else if (arg.value !== undefined) value = cv.expand(cmd.node, arg.value, st.env);
    else value = cv.globalEnv.get(key); // inherits the global value (automatic ARGs too)
    // Like BuildKit, a declared ARG enters the RUN environment (an ENV given
    // after it wins again); the image Env is never touched. The SBOM scan
    // switches are for BuildKit only and stay out of it (its nonEnvArgs).
    if (value !== undefined && !NON_ENV_ARGS.has(key)) st.env.set(key, value);
    const at = st.declared.findIndex((d) => d.key === key);
    if (at >= 0) st.declared[at] = { key, value };
    else st.declared.push({ key, value });
    cv.usedArgs.add(key);
    parts.push(value === undefined ? key : `${key}=${value}`);
  }
  commitToHistory(st, `ARG ${parts.join(' ')}`, 'metadata', cv.epoch);
}

export function dispatchEnv(cv: Converter, st: StageState, cmd: EnvCommand): void {
  const cfg = ensureConfig(st.img);
  // Every value expands against the environment before this instruction
  // (`ENV a=1 b=$a` gives b the old a), as in Docker.
  const pairs: [string, string][] = [];
  for (const kv of cmd.pairs) {
    const key = cv.expand(cmd.node, kv.key, st.env, st);
    if (key === '') throw cv.err(cmd.node, 'ENV names can not be blank');
    checkSecretName(cv, cmd.node, 'ENV', key);
    pairs.push([key, cv.expand(cmd.node, kv.value, st.env, st)]);
  }
  for (const [key, value] of pairs) {
    cfg.Env = addEnv(cfg.Env ?? [], key, value);
    st.env.set(key, value);
  }
  commitToHistory(st, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, 'metadata', cv.epoch);
}

export function dispatchLabel(cv: Converter, st: StageState, cmd: LabelCommand): void {
  const cfg = ensureConfig(st.img);
  const parts: string[] = [];
  for (const kv of cmd.pairs) {
    const key = cv.expand(cmd.node, kv.key, st.env, st);
    if (key === '') throw cv.err(cmd.node, 'LABEL names can not be blank');
    const value = cv.expand(cmd.node, kv.value, st.env, st);
    cfg.Labels = { ...(cfg.Labels ?? {}), [key]: value };
    parts.push(`${key}=${value}`);
  }
  commitToHistory(st, `LABEL ${parts.join(' ')}`, 'metadata', cv.epoch);
}

export function dispatchMaintainer(cv: Converter, st: StageState, cmd: MaintainerCommand): void {
  st.img.author = cmd.maintainer;
  commitToHistory(st, `MAINTAINER ${cmd.maintainer}`, 'metadata', cv.epoch);
}

export function dispatchExpose(cv: Converter, st: StageState, cmd: ExposeCommand): void {
  const cfg = ensureConfig(st.img);
  // BuildKit sorts the specs as written (the command has them sorted), then expands and splits each.
  const ports: string[] = [];
  for (const w of cmd.ports) ports.push(...cv.expandSplit(cmd.node, w, st.env, st));
  if (!ports.length) throw cv.err(cmd.node, 'EXPOSE requires at least one argument');
  for (const p of ports) checkExposeSpec(cv, cmd.node, p);
  const exposed = { ...(cfg.ExposedPorts ?? {}) };
  const specs: string[] = [];
  for (const p of ports) {
    try {
      specs.push(...parsePortSpec(p));
    } catch (e) {
      throw cv.err(cmd.node, (e as Error).message, 'write PORT, PORT/PROTO or START-END[/PROTO] (tcp, udp or sctp)');
    }
  }
  for (const k of specs) exposed[k] = {};
  cfg.ExposedPorts = exposed;
  // BuildKit records Go's %v of the parsed list: EXPOSE [80/tcp 53/udp].
  commitToHistory(st, `EXPOSE [${specs.join(' ')}]`, 'metadata', cv.epoch);
}

export function dispatchUser(cv: Converter, st: StageState, cmd: UserCommand): void {
  const user = cv.expand(cmd.node, cmd.user, st.env, st);
  ensureConfig(st.img).User = user;
  commitToHistory(st, `USER ${user}`, 'metadata', cv.epoch);
}

export function dispatchWorkdir(cv: Converter, st: StageState, cmd: WorkdirCommand): void {
  const raw = cv.expand(cmd.node, cmd.path, st.env, st);
  if (raw === '') throw cv.err(cmd.node, 'WORKDIR cannot be empty');
  checkWorkdir(cv, st, cmd.node, raw);
  const cfg = ensureConfig(st.img);
  const wd = resolveAgainst(cfg.WorkingDir || '/', raw);
  cfg.WorkingDir = wd;
  if (wd === '/') return commitToHistory(st, `WORKDIR ${wd}`, 'metadata', cv.epoch);
  // BuildKit creates the directory right away, owned by the current USER.
  const chown = cfg.User ? parseChown(cfg.User) : undefined;
  const name = stepName(st, cv.displayText(cmd.node, st.env));
  st.ref = cv.fileOp(st, cmd.node, name, [{ op: 'mkdir', path: wd, mode: 0o755, makeParents: true, chown }], []);
  commitToHistory(st, `WORKDIR ${wd}`, 'mkdir', cv.epoch);
}

export function dispatchVolume(cv: Converter, st: StageState, cmd: VolumeCommand): void {
  const cfg = ensureConfig(st.img);
  const vols: string[] = [];
  for (const w of cmd.volumes) {
    const v = cv.expand(cmd.node, w, st.env, st);
    if (v === '') throw cv.err(cmd.node, 'VOLUME specified can not be an empty string');
    vols.push(v);
  }
  const volumes = { ...(cfg.Volumes ?? {}) };
  for (const v of vols) volumes[v] = {};
  cfg.Volumes = volumes;
  commitToHistory(st, `VOLUME [${vols.join(' ')}]`, 'metadata', cv.epoch);
}

export function dispatchStopSignal(cv: Converter, st: StageState, cmd: StopSignalCommand): void {
  const sig = cv.expand(cmd.node, cmd.signal, st.env, st);
  if (!validSignal(sig)) throw cv.err(cmd.node, `invalid signal: ${sig}`, 'use a signal name like SIGTERM or a number like 9');
  ensureConfig(st.img).StopSignal = sig;
  commitToHistory(st, `STOPSIGNAL ${sig}`, 'metadata', cv.epoch);
}

export function dispatchShell(cv: Converter, st: StageState, cmd: ShellCommand): void {
  ensureConfig(st.img).Shell = [...cmd.shell];
  commitToHistory(st, `SHELL [${cmd.shell.join(' ')}]`, 'metadata', cv.epoch); // Go's %v of a slice
}

// CMD/ENTRYPOINT argv: the exec form as is; the shell form wrapped in SHELL.
function withShell(st: StageState, cmd: CmdCommand | EntrypointCommand): string[] {
  if (!cmd.prependShell) return [...cmd.cmdLine];
  const shell = st.img.config?.Shell?.length ? st.img.config.Shell : DEFAULT_SHELL;
  return [...shell, cmd.cmdLine.join(' ')];
}

export function dispatchCmd(cv: Converter, st: StageState, cmd: CmdCommand): void {
  if (cmd.prependShell) checkShellForm(cv, st, cmd.node, 'CMD');
  const cfg = ensureConfig(st.img);
  const args = withShell(st, cmd);
  cfg.Cmd = args;
  // BuildKit marks CMD's arguments as escaped on every platform.
  cfg.ArgsEscaped = true;
  st.cmdSet = true;
  commitToHistory(st, `CMD ${goQuoteSlice(args)}`, 'metadata', cv.epoch);
}

export function dispatchEntrypoint(cv: Converter, st: StageState, cmd: EntrypointCommand): void {
  if (cmd.prependShell) checkShellForm(cv, st, cmd.node, 'ENTRYPOINT');
  const cfg = ensureConfig(st.img);
  const args = withShell(st, cmd);
  // ENTRYPOINT [] clears it (null), like BuildKit's emptyAsNil.
  cfg.Entrypoint = !cmd.prependShell && args.length === 0 ? null : args;
  // A new ENTRYPOINT drops a CMD inherited from the base (not one set in this stage).
  if (!st.cmdSet) cfg.Cmd = null;
  commitToHistory(st, `ENTRYPOINT ${goQuoteSlice(args)}`, 'metadata', cv.epoch);
}

export function dispatchHealthcheck(cv: Converter, st: StageState, cmd: HealthcheckCommand): void {
  const health = { ...cmd.health, Test: [...(cmd.health.Test ?? [])] };
  ensureConfig(st.img).Healthcheck = health;
  commitToHistory(st, healthcheckHistory(health), 'metadata', cv.epoch);
}

// The trigger is stored for images built FROM this one; BuildKit records no history entry.
export function dispatchOnbuild(_cv: Converter, st: StageState, cmd: OnbuildCommand): void {
  const cfg = ensureConfig(st.img);
  cfg.OnBuild = [...(cfg.OnBuild ?? []), cmd.expression];
}
