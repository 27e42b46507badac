// Every registered command. Add a command here only when it fully works.
// A module exports `register(program, globals) => Command` and loads its
// engine code lazily inside the action.
import type { Command } from 'commander';
import type { GlobalOptions } from '../context';
import { register as build } from './build';
import { register as history } from './history';
import { register as inspect } from './inspect';
import { register as load } from './load';
import { register as login } from './login';
import { register as logout } from './logout';
import { register as ls, registerImages as images } from './ls';
import { register as pull } from './pull';
import { register as push } from './push';
import { register as rm } from './rm';
import { register as save } from './save';
import { register as tag } from './tag';
import { register as version } from './version';
import { register as unpack } from './unpack';
import { register as du } from './du';
import { register as prune } from './prune';
import { register as doctor } from './doctor';

export type RegisterCommand = (program: Command, globals: () => GlobalOptions) => Command;

export const commands: RegisterCommand[] = [
  build,
  history,
  images,
  inspect,
  load,
  login,
  logout,
  ls,
  pull,
  push,
  rm,
  save,
  tag,
  version,
  unpack,
  du,
  prune,
  doctor,
];
