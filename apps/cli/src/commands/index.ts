import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { registerDoctor } from './doctor.js';

/** Adds one subcommand to the program. Each command lives in its own file under `commands/`. */
export type RegisterCommand = (program: Command, output: CliOutput) => void;

/** Every `bvllm` subcommand, in `--help` order; a new command is a new file plus one line here. */
export const commands: readonly RegisterCommand[] = [registerDoctor];
