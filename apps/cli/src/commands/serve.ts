import { createServer } from '@bvllm/server';
import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';

interface ServeFlags {
  model?: string;
  host?: string;
  port: number;
  mediaRoot?: string;
  cacheDir?: string;
  runtime?: 'tfjs' | 'onnx';
}

/**
 * `bvllm serve`: the OpenAI-compatible server (`@bvllm/server`) over one inference session, until SIGINT/SIGTERM
 * (in-flight requests are drained first). The server package's own start command has every limit as a flag.
 */
export function registerServe(program: Command, output: CliOutput): void {
  program
    .command('serve')
    .description('serve the model over an OpenAI-compatible HTTP API (chat completions about videos and images) and a web page')
    .option('--model <dir>', 'a B-VLLM model folder (default: the shipped bvllm-tiny)')
    .option('--host <h>', 'interface to bind', '127.0.0.1')
    .option('--port <n>', 'TCP port, 0 for any free one', nonNegativeInt, 8000)
    .option('--media-root <dir>', 'folder file:// media URLs may point into (default: data: URLs only)')
    .option('--cache-dir <dir>', 'feature cache folder (default: a temp folder)')
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName)
    .action(async (flags: ServeFlags) => {
      const session = await openSessionOption(flags.model, { runtime: flags.runtime });
      const server = createServer(session, {
        host: flags.host,
        port: flags.port,
        ...(flags.mediaRoot !== undefined && { mediaRoot: flags.mediaRoot }),
        ...(flags.cacheDir !== undefined && { cacheDir: flags.cacheDir }),
      });
      const url = await server.listen();
      output.err(`bvllm serve: ${session.config.name} at ${url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          output.err(`bvllm serve: ${signal}, draining in-flight requests\n`);
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await server.close();
      await session.close();
    });
}
