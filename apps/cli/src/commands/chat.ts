import { createInterface } from 'node:readline';
import { VideoChat } from '@bvllm/pipeline';
import type { Command } from 'commander';
import { addAnswerFlags, encodeOptionsOf, generationOf, maxNewTokensOf, sessionOptionsOf, tokenLimitNote, type AnswerFlags } from '../answer-flags.js';
import { progressLine } from '../progress-line.js';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';

interface ChatFlags extends AnswerFlags {
  model?: string;
  seed: number;
  runtime?: 'tfjs' | 'onnx';
}

export function registerChat(program: Command, output: CliOutput): void {
  const command = program
    .command('chat')
    .description('multi-round chat about one video in the terminal; follow-ups reuse the encoded frames; reads piped questions one per line')
    .argument('<video>', 'a video file, an image, or a folder of frames')
    .option('--model <dir>', 'a B-VLLM model folder (default: the shipped bvllm-tiny)')
    .option('--seed <n>', 'seed of the frame-selection noise and sampling', nonNegativeInt, 0)
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName);
  addAnswerFlags(command).action(async (video: string, flags: ChatFlags) => {
    const session = await openSessionOption(flags.model, { runtime: flags.runtime, ...sessionOptionsOf(flags, output) });
    let chat: VideoChat;
    try {
      chat = await VideoChat.open(session, video, encodeOptionsOf(flags, { onProgress: progressLine('encode', output) }));
    } catch (error) {
      await session.close();
      throw error;
    }
    const tty = process.stdin.isTTY === true;
    const maxNewTokens = maxNewTokensOf(session, flags);
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: tty });
    try {
      output.err(`${chat.video.numFrames} frames encoded. Ask a question (empty line or Ctrl-D to quit).\n`);
      if (tty) rl.prompt();
      // The line iterator buffers every line that arrives while an answer is being generated, so questions piped
      // in at once are answered in order; `rl.question()` saw only the first (lines read between questions were lost).
      for await (const line of rl) {
        const question = line.trim();
        if (!question) break;
        const stream = chat.ask(question, { seed: flags.seed, generation: generationOf(flags) });
        for (;;) {
          const next = await stream.next();
          if (next.done) {
            output.out('\n');
            const note = tokenLimitNote(next.value.finishReason, maxNewTokens);
            if (note) output.err(note);
            break;
          }
          output.out(next.value);
        }
        if (tty) rl.prompt();
      }
    } finally {
      rl.close();
      chat.dispose();
      await session.close();
    }
  });
}
