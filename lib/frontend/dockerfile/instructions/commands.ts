// Typed commands: what each Dockerfile instruction means, read once from the
// parser's AST (see parse.ts) so the converter reads fields, never flags by
// name. Values that take ARG/ENV expansion are kept as written: the converter
// expands them where BuildKit does, against the environment of their stage.
// Every command keeps its source instruction (`node`): lines and text for
// errors and progress names.

import type { HealthConfig } from '../../../images/types';
import type { Heredoc, Instruction } from '../ast';
import type { MountFlag } from './mounts';

interface CommandBase {
  node: Instruction;
}

// FROM [--platform=...] <base> [AS <name>]
export interface FromCommand extends CommandBase {
  keyword: 'FROM';
  baseName: string; // unexpanded (global ARGs apply)
  stageName: string; // lower-cased, '' when unnamed
  platform?: string; // --platform, unexpanded
}

// ARG name[=default] ...
export interface ArgCommand extends CommandBase {
  keyword: 'ARG';
  args: { key: string; value?: string }[]; // value unexpanded; undefined without "="
}

export interface KeyValuePair {
  key: string;
  value: string;
}

export interface EnvCommand extends CommandBase {
  keyword: 'ENV';
  pairs: KeyValuePair[]; // keys and values unexpanded
}

export interface LabelCommand extends CommandBase {
  keyword: 'LABEL';
  pairs: KeyValuePair[];
}

export interface MaintainerCommand extends CommandBase {
  keyword: 'MAINTAINER';
  maintainer: string; // never expanded
}

export interface ExposeCommand extends CommandBase {
  keyword: 'EXPOSE';
  ports: string[]; // sorted as written (BuildKit sorts before expanding)
}

export interface UserCommand extends CommandBase {
  keyword: 'USER';
  user: string;
}

export interface WorkdirCommand extends CommandBase {
  keyword: 'WORKDIR';
  path: string;
}

export interface VolumeCommand extends CommandBase {
  keyword: 'VOLUME';
  volumes: string[];
}

export interface StopSignalCommand extends CommandBase {
  keyword: 'STOPSIGNAL';
  signal: string;
}

export interface ShellCommand extends CommandBase {
  keyword: 'SHELL';
  shell: string[];
}

// CMD / ENTRYPOINT: the exec form as written, or the shell form's one string
// that the stage's SHELL will run (prependShell). Never expanded.
export interface CmdCommand extends CommandBase {
  keyword: 'CMD';
  cmdLine: string[];
  prependShell: boolean;
}

export interface EntrypointCommand extends CommandBase {
  keyword: 'ENTRYPOINT';
  cmdLine: string[];
  prependShell: boolean;
}

export interface HealthcheckCommand extends CommandBase {
  keyword: 'HEALTHCHECK';
  health: HealthConfig; // durations in ns; zero values left out
}

export interface OnbuildCommand extends CommandBase {
  keyword: 'ONBUILD';
  expression: string; // the trigger as the image config stores it (parsed by builds FROM this image)
}

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'sandbox' | 'insecure';

export interface RunCommand extends CommandBase {
  keyword: 'RUN';
  cmdLine: string[]; // exec form as written, or the shell form's one string
  prependShell: boolean;
  heredocs: Heredoc[];
  mounts: MountFlag[]; // fields split; values expanded at convert time
  network: NetworkMode;
  security: SecurityMode;
}

// A COPY/ADD source: a path (URL, git reference or local path/pattern) or an
// inline document named by a `<<EOF` word.
export type CopySource = { path: string } | { heredoc: Heredoc };

// COPY and ADD (keyword tells them apart; the ADD-only fields are false or
// undefined for COPY). Paths and flag values are unexpanded.
export interface CopyCommand extends CommandBase {
  keyword: 'COPY' | 'ADD';
  sources: CopySource[];
  dest: string;
  from?: string; // COPY --from (stage name, index, named context or image)
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string; // ADD --checksum
  keepGitDir: boolean; // ADD --keep-git-dir
  unpack?: boolean; // ADD --unpack; undefined: unpack local archives
}

// Instructions inside a stage (everything but FROM).
export type StageCommand =
  | ArgCommand
  | EnvCommand
  | LabelCommand
  | MaintainerCommand
  | ExposeCommand
  | UserCommand
  | WorkdirCommand
  | VolumeCommand
  | StopSignalCommand
  | ShellCommand
  | CmdCommand
  | EntrypointCommand
  | HealthcheckCommand
  | OnbuildCommand
  | RunCommand
  | CopyCommand;

export type Command = FromCommand | StageCommand;
