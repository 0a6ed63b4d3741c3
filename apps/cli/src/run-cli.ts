import { BvllmError } from '@bvllm/core';
import { setSessionThread } from '@bvllm/pipeline';
import { Command, CommanderError } from 'commander';
import { version } from '../package.json';
import { commands } from './commands/index.js';

/** Where a command writes, so tests can capture it; the bin passes the process streams. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

/** Commands whose event loop must stay free while a model runs. */
const SERVING = new Set(['serve', 'watch']);

const processOutput: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * Parses `argv` and runs the chosen command; resolves to the exit code. Failures print one line on stderr (the
 * error's code and message), never a stack trace: users act on the message, and BVLLM_DEBUG=1 shows the stack.
 */
export async function runCli(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  const program = new Command('bvllm')
    .description('B-VLLM, a video LLM with balanced spatio-temporal tokens')
    .version(version)
    .exitOverride()
    .configureOutput({ writeOut: output.out, writeErr: output.err });
  for (const register of commands) register(program, output);
  // Commands that serve keep onnxruntime off the event loop; batch commands run it on the calling thread, which
  // saves a thread hop per call (many per answer with a small model).
  program.hook('preAction', (_program, action) => setSessionThread(SERVING.has(action.name()) ? 'worker' : 'main'));
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander has already printed its own one-line message (unknown option, bad value) or the help text.
    if (error instanceof CommanderError) return error.exitCode;
    output.err(`${describe(error)}\n`);
    if (process.env.BVLLM_DEBUG) output.err(`${(error as Error)?.stack ?? ''}\n`);
    return 1;
  }
}

function describe(error: unknown): string {
  const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ');
  if (BvllmError.isInstance(error)) return `bvllm: error ${error.code}: ${oneLine(error.message)}`;
  const message = error instanceof Error ? error.message : String(error);
  return `bvllm: unexpected error: ${oneLine(message)} (set BVLLM_DEBUG=1 for the stack trace)`;
}
