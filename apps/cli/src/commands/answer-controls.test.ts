/**
 * The answer controls of `ask`, `chat` and `eval` (issue #20 item 6), on the shipped default model and the sample
 * video (`examples/brief-event.mp4`: 10 s, so 10 frames at the model's 1 fps).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { testWorkspace, type TestWorkspace } from '../test-workspace.js';

const bin = fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url));
const video = fileURLToPath(new URL('../../../../examples/brief-event.mp4', import.meta.url));
const question = 'What shape flashed briefly?';

/** Runs the CLI without blocking the test worker (a blocked worker misses vitest's own calls for a minute). */
function bvllm(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

interface AskJson {
  answer: string;
  finishReason: string;
  selection: { frameWeights: number[][]; frames: { timestampSec: number }[] };
}

async function askJson(...flags: string[]): Promise<AskJson> {
  const run = await bvllm(['ask', video, question, '--json', ...flags]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as AskJson;
}

/** T, the frames the selection weighed: the length of each row of frameWeights. */
const framesOf = (out: AskJson) => out.selection.frameWeights[0]!.length;

describe('bvllm ask: frame sampling per call', async () => {
  it('--fps sets the sampling rate and --num-frames a uniform count; the model default stays 1 fps', async () => {
    expect(framesOf(await askJson())).toBe(10);
    expect(framesOf(await askJson('--fps', '2'))).toBe(20);
    expect(framesOf(await askJson('--fps', '0.5'))).toBe(5);
    const three = await askJson('--num-frames', '3');
    expect(framesOf(three)).toBe(3);
  });

  it('refuses --fps together with --num-frames, and non-positive values, in one line', async () => {
    const both = await bvllm(['ask', video, question, '--fps', '2', '--num-frames', '3']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/^error: option '--fps <n>' cannot be used with option '--num-frames <n>'\n$/);
    for (const [flag, value] of [['--fps', '0'], ['--num-frames', '1.5'], ['--temperature', '-1'], ['--max-new-tokens', '0']]) {
      const bad = await bvllm(['ask', video, question, flag, value]);
      expect(bad.code, `${flag} ${value}`).toBe(1);
      expect(bad.stderr).toMatch(new RegExp(`^error: option '${flag} <[a-z]+>' argument '${value.replace('.', '\\.')}' is invalid`));
    }
  });
});

describe('bvllm ask: generation controls', async () => {
  it('--max-new-tokens cuts the answer and says so on stderr; --json reports finishReason "length"', async () => {
    const full = await askJson();
    expect(full.finishReason).toBe('eos');
    const cut = await bvllm(['ask', video, question, '--max-new-tokens', '1']);
    expect(cut.code).toBe(0);
    expect(cut.stderr).toContain('bvllm: note: the answer stopped at the 1-token limit; --max-new-tokens raises it\n');
    expect((await askJson('--max-new-tokens', '1')).finishReason).toBe('length');
    // An answer that ends on its own gets no note.
    expect((await bvllm(['ask', video, question])).stderr).not.toContain('note:');
  });

  it('--temperature samples, reproducibly for a --seed; 0 is greedy', async () => {
    const greedy = await askJson('--temperature', '0');
    expect(greedy.answer).toBe((await askJson()).answer);
    const hot = await askJson('--temperature', '5', '--seed', '3', '--max-new-tokens', '8');
    expect((await askJson('--temperature', '5', '--seed', '3', '--max-new-tokens', '8')).answer).toBe(hot.answer);
    expect(hot.answer).not.toBe(greedy.answer);
  });
});

describe('bvllm chat', async () => {
  it('answers every piped question in order, the first as `ask` does, follow-ups with the history', async () => {
    const single = await bvllm(['ask', video, question, '--max-new-tokens', '6']);
    const run = await bvllm(['chat', video, '--max-new-tokens', '6'], `${question}\nWhat colour was it?\nHow many crosses are there?\n`);
    expect(run.code).toBe(0);
    const answers = run.stdout.split('\n');
    expect(answers.pop()).toBe('');
    expect(answers).toHaveLength(3);
    expect(`${answers[0]}\n`).toBe(single.stdout);
  });

  it('takes the answer flags: --num-frames, and the token-limit note', async () => {
    const run = await bvllm(['chat', video, '--num-frames', '4', '--max-new-tokens', '1'], `${question}\n`);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^4 frames encoded\./m);
    expect(run.stderr).toContain('the answer stopped at the 1-token limit');
  });
});

describe('bvllm eval', async () => {
  let ws: TestWorkspace;
  beforeAll(async () => {
    ws = await testWorkspace({ train: 1, test: 2 });
  }, 120_000);

  it('takes --num-frames, --max-new-tokens and --temperature, and counts the answers cut at the limit', async () => {
    const run = await bvllm(['eval', '--data', `${ws.data}/test.json`, '--num-frames', '4', '--max-new-tokens', '1', '--temperature', '0.7', '--seed', '2']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^mcqa: [\d.]+% of 2 \(/m);
    // Every answer of the default model is longer than one token.
    expect(run.stderr).toMatch(/bvllm: note: 4 of 4 answers stopped at the 1-token limit; --max-new-tokens raises it\n/);
  });
});
