/**
 * The server's start command: `node dist/main.js --model DIR --media-root DIR --port N`. Opens one inference session,
 * serves until SIGTERM/SIGINT, then drains in-flight requests before exiting.
 */
import { BvllmError, initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession } from '@bvllm/pipeline';
import { createServer } from './build-server.js';
import { SERVER_FLAGS_HELP, parseServerFlags } from './server-flags.js';

const usage = `usage: node dist/main.js [--model DIR] [--media-root DIR] [--host H] [--port N] [options]
${SERVER_FLAGS_HELP}`;

async function main(): Promise<void> {
  const flags = parseServerFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  await initBackend();
  // Opens the ONNX modules (exporting them on the first run) before listening, so no request waits for them.
  const session = await InferenceSession.open(flags.model ?? defaultModelDir());
  const server = createServer(session, flags.config, { logger: flags.log });
  const url = await server.listen();
  process.stdout.write(`bvllm server: ${session.config.name} at ${url}\n`);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    process.stdout.write(`bvllm server: ${signal}, draining in-flight requests\n`);
    // The drain is bounded: past the grace period (and a little for aborts to unwind) the process exits anyway.
    setTimeout(() => {
      process.stderr.write('bvllm server: drain period over, exiting\n');
      process.exit(1);
    }, server.config.shutdownGraceMs + 5000).unref();
    server
      .close()
      .then(() => session.close())
      .then(() => {
        process.stdout.write('bvllm server: stopped\n');
        process.exit(0);
      })
      .catch((error: unknown) => {
        process.stderr.write(`bvllm server: shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const code = BvllmError.isInstance(error) ? ` ${error.code}` : '';
  process.stderr.write(`bvllm server: error${code}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
