// Every registered command. Add a command here only when it fully works.
// A module exports `register(program, globals) => Command` and loads its
// engine code lazily inside the action.
import type { Command } from 'commander';
import type { GlobalOptions } from '../context';

export type RegisterCommand = (program: Command, globals: () => GlobalOptions) => Command;

export const commands: RegisterCommand[] = [
];
