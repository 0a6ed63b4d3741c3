import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { registerAsk } from './ask.js';
import { registerChat } from './chat.js';
import { registerConvert } from './convert.js';
import { registerDoctor } from './doctor.js';
import { registerEval } from './eval.js';
import { registerJobs } from './jobs.js';
import { registerExtract } from './extract.js';
import { registerServe } from './serve.js';
import { registerSynth } from './synth.js';
import { registerTrain } from './train.js';
import { registerWatch } from './watch.js';
import { registerWorker } from './worker.js';

/** Adds one subcommand to the program. Each command lives in its own file under `commands/`. */
export type RegisterCommand = (program: Command, output: CliOutput) => void;

/** Every `bvllm` subcommand, in `--help` order; a new command is a new file plus one line here. */
export const commands: readonly RegisterCommand[] = [registerAsk, registerChat, registerWatch, registerSynth, registerExtract, registerTrain, registerConvert, registerEval, registerServe, registerWorker, registerJobs, registerDoctor];
