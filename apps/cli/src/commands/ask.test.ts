import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bvllm, testWorkspace } from '../test-workspace.js';

let dir: string;
let modelDir: string;
let video: string;

beforeAll(async () => {
  ({ dir, modelDir, video } = await testWorkspace({ train: 1, test: 1 }));
}, 120_000);

describe('bvllm ask', () => {
  it('--json answers with the selected frames, and --show-frames writes a contact sheet of them', async () => {
    const png = join(dir, 'frames.png');
    const { code, stdout, stderr } = await bvllm(['ask', video, 'What colour is the square?', '--model', modelDir, '--json', '--show-frames', png, '--max-new-tokens', '3']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { answer: string; finishReason: string; selection: { frames: { timestampSec: number; weight: number }[]; visualTokens: number } };
    expect(typeof out.answer).toBe('string');
    expect(['eos', 'length', 'stop']).toContain(out.finishReason);
    // K = 4 selection queries, merged to at most 4 frames of R = 4 tokens each (tinyPipelineConfig).
    expect(out.selection.frames.length).toBeGreaterThanOrEqual(1);
    expect(out.selection.frames.length).toBeLessThanOrEqual(4);
    expect(out.selection.visualTokens).toBe(out.selection.frames.length * 4);
    for (const f of out.selection.frames) expect(f.timestampSec % 1).toBeCloseTo(0.5, 6); // 1 fps: segment middles
    const sheet = PNG.sync.read(readFileSync(png));
    expect(sheet.width).toBe(out.selection.frames.length * 132 + 4);
  });

  it('answers the default model with the same greedy text on onnx (its export cached after the first run) and tfjs', async () => {
    const args = ['ask', video, 'What colour is the square?', '--json', '--max-new-tokens', '12'];
    const answerOf = (run: { code: number | null; stdout: string; stderr: string }) => {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      return (JSON.parse(run.stdout) as { answer: string }).answer;
    };
    const onnx = answerOf(await bvllm([...args, '--runtime', 'onnx']));
    const tfjs = answerOf(await bvllm([...args, '--runtime', 'tfjs']));
    expect(onnx.length).toBeGreaterThan(0);
    expect(onnx).toBe(tfjs);
    // Without --runtime the default (onnx) runs, on the export the first run cached.
    expect(answerOf(await bvllm(args))).toBe(onnx);
  });

  it('--show-frames without --json lists the kept frames and the sheet on stderr after the streamed answer', async () => {
    const png = join(dir, 'listed.png');
    const { code, stdout, stderr } = await bvllm(['ask', video, 'What colour is the square?', '--model', modelDir, '--show-frames', png, '--max-new-tokens', '3']);
    expect(code).toBe(0);
    expect(stdout.endsWith('\n')).toBe(true);
    const lines = stderr.split('\n').filter((l) => l.startsWith('frames: ') || l.startsWith('contact sheet: '));
    expect(lines[0]).toMatch(/^frames: 4 selection queries kept [1-4] of \d+ sampled: \d+\.5 s \(weight [01]\.\d\d/);
    expect(lines[1]).toBe(`contact sheet: ${png}`);
    // Its own --model: no note about the default model.
    expect(stderr).not.toContain('bvllm-tiny');
    expect(PNG.sync.read(readFileSync(png)).width).toBeGreaterThan(0);
  });

  it('is deterministic for a seed and streams plain text by default', async () => {
    const a = await bvllm(['ask', video, 'What shape flashed briefly?', '--model', modelDir, '--seed', '7', '--max-new-tokens', '3']);
    const b = await bvllm(['ask', video, 'What shape flashed briefly?', '--model', modelDir, '--seed', '7', '--max-new-tokens', '3']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout.endsWith('\n')).toBe(true);
  });

  it('fails with one clear line and exit 1 on a missing video or a folder that is not a model', async () => {
    const missing = await bvllm(['ask', join(dir, 'nope.mp4'), 'q?', '--model', modelDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^bvllm: error VIDEO_DECODE: .*nope\.mp4/);
    const notModel = await bvllm(['ask', video, 'q?', '--model', dir]);
    expect(notModel.code).toBe(1);
    expect(notModel.stderr).toMatch(/^bvllm: error CHECKPOINT_FORMAT: .*not a B-VLLM model folder/);
  });
});
