import { SERVER_FLAGS_HELP, createServer, parseServerFlags } from '@bvllm/server';
import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';

/**
 * `bvllm serve`: the OpenAI-compatible server (`@bvllm/server`) over one inference session, until SIGINT/SIGTERM
 * (in-flight requests are drained first). It takes the server's own start command's flags (`parseServerFlags`,
 * every limit), plus `--runtime`.
 */
export function registerServe(program: Command, output: CliOutput): void {
  program
    .command('serve')
    .description('serve the model over an OpenAI-compatible HTTP API (chat completions about videos, images and live streams) and a web page')
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName)
    // The server's flags are parsed by the server's own table, so both start commands take the same ones.
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', `\nServer options (as node apps/server/dist/main.js takes them):\n${SERVER_FLAGS_HELP}`)
    .action(async (flags: { runtime?: 'tfjs' | 'onnx' }, command: Command) => {
      const server = parseServerFlags(command.args);
      const session = await openSessionOption(server.model, { runtime: flags.runtime });
      const app = createServer(session, server.config, { logger: server.log });
      const url = await app.listen();
      output.err(`bvllm serve: ${session.config.name} at ${url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          output.err(`bvllm serve: ${signal}, draining in-flight requests\n`);
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await app.close();
      await session.close();
    });
}
