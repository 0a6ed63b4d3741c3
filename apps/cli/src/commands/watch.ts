import { createInterface } from 'node:readline';
import { InvalidArgumentError } from '@bvllm/core';
import { LiveStream, type LiveAskResult } from '@bvllm/pipeline';
import type { Command } from 'commander';
import { generationOf, maxNewTokensOf, sessionOptionsOf, tokenLimitNote, type AnswerFlags } from '../answer-flags.js';
import type { CliOutput } from '../run-cli.js';
import { RUNTIME_FLAG_HELP, nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber, runtimeName } from '../flags.js';
import { openSessionOption } from './model-option.js';

interface WatchFlags extends Omit<AnswerFlags, 'numFrames'> {
  model?: string;
  seed: number;
  runtime?: 'tfjs' | 'onnx';
  windowSec: number;
  longTermEvery?: number;
  longTermFrames: number;
  prompt?: string;
  every?: number;
  count: number;
  minFrames: number;
  openTimeoutSec: number;
  stallTimeoutSec: number;
  realtime?: boolean;
  json?: boolean;
}

const secs = (t: number) => `${t.toFixed(1)} s`;

/** What follows an answer: the window it saw and the stream times of the frames it used. */
function citation(result: LiveAskResult): string {
  return `  [window ${secs(result.window.fromSec)} – ${secs(result.window.toSec)}, ${result.window.frames} frames; frames used: ${result.citedSec.map(secs).join(', ')}]\n`;
}

export function registerWatch(program: Command, output: CliOutput): void {
  program
    .command('watch')
    .description('watch a live stream and answer questions about its last W seconds at any moment; questions come from stdin (one per line) or --prompt')
    .argument('<source>', 'rtsp://, http(s):// (HLS too), udp:// (MPEG-TS), a named pipe, - for stdin, or a V4L2 device (/dev/video0)')
    .option('--window-sec <s>', 'seconds of the stream the window keeps', positiveNumber, 600)
    .option('--fps <n>', 'frames kept per second of stream time (default 1, as the paper samples)', positiveNumber)
    .option('--long-term-every <s>', 'also keep one frame per this many seconds from before the window', positiveNumber)
    .option('--long-term-frames <n>', 'most frames of that long-term memory', positiveInt, 60)
    .option('--prompt <question>', 'ask this instead of reading stdin (required when the source is stdin)')
    .option('--every <s>', 'with --prompt: ask again every this many seconds', positiveNumber)
    .option('--count <n>', 'with --prompt: how many times to ask', positiveInt, 1)
    .option('--min-frames <n>', 'frames the window must hold before a question runs (it waits for them)', positiveInt, 1)
    .option('--open-timeout-sec <s>', 'a connection that gives no frame this long is a failed attempt', positiveNumber, 10)
    .option('--stall-timeout-sec <s>', 'no frame this long: the source is stalled (and reconnected)', positiveNumber, 10)
    .option('--realtime', 'read a file source at its own rate, as a camera would deliver it')
    .option('--json', 'one JSON line per answer: question, answer, window, cited frame times')
    .option('--model <dir>', 'a B-VLLM model folder (default: the shipped bvllm-tiny)')
    .option('--seed <n>', 'seed of the frame-selection noise and sampling', nonNegativeInt, 0)
    .option('--runtime <name>', RUNTIME_FLAG_HELP, runtimeName)
    .option('--max-new-tokens <n>', 'longest answer in tokens (default: the model config)', positiveInt)
    .option('--temperature <t>', 'sampling temperature (0 = greedy, the default); seeded by --seed', nonNegativeNumber)
    .action(async (source: string, flags: WatchFlags) => {
      const stdinSource = source === '-' || source === 'pipe:0';
      if (stdinSource && flags.prompt === undefined) throw new InvalidArgumentError('source', 'the source is stdin, so questions must come from --prompt');
      const session = await openSessionOption(flags.model, { runtime: flags.runtime, ...sessionOptionsOf(flags, output) });
      const stream = LiveStream.open(session, source, {
        windowSec: flags.windowSec,
        fps: flags.fps,
        longTerm: flags.longTermEvery === undefined ? undefined : { everySec: flags.longTermEvery, maxFrames: flags.longTermFrames },
        openTimeoutMs: flags.openTimeoutSec * 1000,
        stallTimeoutMs: flags.stallTimeoutSec * 1000,
        realtime: flags.realtime,
        onEvent: (event) => {
          if (event.type === 'open') output.err(`bvllm: watching ${source} (connection ${event.connection})\n`);
          else if (event.type === 'stalled') output.err(`bvllm: no frame for ${secs(event.silentMs / 1000)}; reconnecting\n`);
          else if (event.type === 'gap') output.err(`bvllm: the source was away from ${secs(event.gap.fromSec)} to ${secs(event.gap.toSec)}\n`);
          else if (event.type === 'ended') output.err('bvllm: the source ended\n');
        },
      });
      const maxNewTokens = maxNewTokensOf(session, flags);
      const ask = async (question: string) => {
        const answer = stream.ask(question, { seed: flags.seed, generation: generationOf(flags), minFrames: flags.minFrames });
        let text = '';
        for (;;) {
          const next = await answer.next();
          if (next.done) {
            const result = next.value;
            if (flags.json) output.out(`${JSON.stringify({ question, answer: text, finishReason: result.finishReason, window: { frames: result.window.frames, fromSec: result.window.fromSec, toSec: result.window.toSec }, citedSec: result.citedSec })}\n`);
            else output.out(`\n${citation(result)}`);
            const note = tokenLimitNote(result.finishReason, maxNewTokens);
            if (note) output.err(note);
            return;
          }
          text += next.value;
          if (!flags.json) output.out(next.value);
        }
      };
      try {
        if (flags.prompt !== undefined) {
          for (let i = 0; i < flags.count; i++) {
            if (i > 0) await new Promise((resolve) => setTimeout(resolve, (flags.every ?? 0) * 1000));
            await ask(flags.prompt);
          }
          return;
        }
        const tty = process.stdin.isTTY === true;
        const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: tty });
        try {
          if (tty) output.err('Ask about the stream at any moment (empty line or Ctrl-D to quit).\n');
          if (tty) rl.prompt();
          for await (const line of rl) {
            const question = line.trim();
            if (!question) break;
            await ask(question);
            if (tty) rl.prompt();
          }
        } finally {
          rl.close();
        }
      } finally {
        await stream.close();
        await session.close();
      }
    });
}
