import { VideoChat, type AskResult } from '@bvllm/pipeline';
import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { writeContactSheet } from '../contact-sheet.js';
import { addAnswerFlags, encodeOptionsOf, generationOf, maxNewTokensOf, sessionOptionsOf, tokenLimitNote, type AnswerFlags } from '../answer-flags.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';
import { progressLine } from '../progress-line.js';
import { DEFAULT_MODEL_NOTE, selectionLines } from '../selection-lines.js';

interface AskFlags extends AnswerFlags {
  model?: string;
  seed: number;
  json?: boolean;
  showFrames?: string;
  cache?: string;
  runtime?: 'tfjs' | 'onnx';
}

export function registerAsk(program: Command, output: CliOutput): void {
  const command = program
    .command('ask')
    .description('answer a question about a video (or image), streaming the answer')
    .argument('<video>', 'a video file, an image, or a folder of frames')
    .argument('<question>', 'the question')
    .option('--model <dir>', 'a B-VLLM model folder (default: the shipped bvllm-tiny)')
    .option('--seed <n>', 'seed of the frame-selection noise and sampling', nonNegativeInt, 0)
    .option('--json', 'print one JSON object (answer, selected frames, timings) instead of streaming text')
    .option('--show-frames <png>', 'write a contact sheet of the selected frames with their weights and timestamps (and list them on stderr)')
    .option('--cache <dir>', 'feature cache folder, so a second question never re-encodes the video')
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName);
  addAnswerFlags(command).action(async (video: string, question: string, flags: AskFlags) => {
    const started = performance.now();
    const session = await openSessionOption(flags.model, { runtime: flags.runtime, featureCacheDir: flags.cache, ...sessionOptionsOf(flags, output) });
    let chat: VideoChat;
    try {
      chat = await VideoChat.open(session, video, encodeOptionsOf(flags, { onProgress: flags.json ? undefined : progressLine('encode', output) }));
    } catch (error) {
      await session.close();
      throw error;
    }
    const encodedAt = performance.now();
    const maxNewTokens = maxNewTokensOf(session, flags);
    let text = '';
    let result: AskResult;
    try {
      const stream = chat.ask(question, { seed: flags.seed, generation: generationOf(flags) });
      for (;;) {
        const next = await stream.next();
        if (next.done) {
          result = next.value;
          break;
        }
        text += next.value;
        if (!flags.json) output.out(next.value);
      }
      if (flags.showFrames) await writeContactSheet(flags.showFrames, video, result.selection, session.config);
    } finally {
      chat.dispose();
      await session.close();
    }
    const timings = { encodeSec: (encodedAt - started) / 1000, answerSec: (performance.now() - encodedAt) / 1000 };
    // --json carries finishReason ("length" when cut); plain text gets the note on stderr.
    if (flags.json) output.out(`${JSON.stringify({ answer: text, finishReason: result.finishReason, selection: result.selection, timings }, null, 2)}\n`);
    else {
      output.out('\n');
      const note = tokenLimitNote(result.finishReason, maxNewTokens);
      if (note) output.err(note);
      if (flags.showFrames) output.err(selectionLines(result.selection, flags.showFrames) + (flags.model === undefined ? DEFAULT_MODEL_NOTE : ''));
    }
  });
}
