import { createInterface } from 'node:readline/promises';
import { VideoChat } from '@bvllm/pipeline';
import type { Command } from 'commander';
import { progressLine } from '../progress-line.js';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';

export function registerChat(program: Command, output: CliOutput): void {
  program
    .command('chat')
    .description('multi-round chat about one video in the terminal; follow-ups reuse the encoded frames')
    .argument('<video>', 'a video file, an image, or a folder of frames')
    .option('--model <dir>', 'a B-VLLM model folder (default: the shipped bvllm-tiny)')
    .option('--seed <n>', 'seed of the frame-selection noise', nonNegativeInt, 0)
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName)
    .action(async (video: string, flags: { model?: string; seed: number; runtime?: 'tfjs' | 'onnx' }) => {
      const session = await openSessionOption(flags.model, { runtime: flags.runtime });
      let chat: VideoChat;
      try {
        chat = await VideoChat.open(session, video, { onProgress: progressLine('encode', output) });
      } catch (error) {
        await session.close();
        throw error;
      }
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY });
      try {
        output.err(`${chat.video.numFrames} frames encoded. Ask a question (empty line or Ctrl-D to quit).\n`);
        for (;;) {
          let question: string;
          try {
            question = (await rl.question('> ')).trim();
          } catch {
            break; // stdin closed
          }
          if (!question) break;
          for await (const delta of chat.ask(question, { seed: flags.seed })) output.out(delta);
          output.out('\n');
        }
      } finally {
        rl.close();
        chat.dispose();
        await session.close();
      }
    });
}
