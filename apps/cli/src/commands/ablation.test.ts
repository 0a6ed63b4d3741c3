import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { describe, expect, it } from 'vitest';
import { bvllm } from '../test-workspace.js';

const video = join(import.meta.dirname, '..', '..', '..', '..', 'examples', 'brief-event.mp4');

/** A copy of the shipped default model with `edit` applied to its bvllm.json. */
function ablated(edit: (config: Record<string, unknown>) => void): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'bvllm-ablation-')), 'model');
  cpSync(defaultModelDir(), dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'bvllm.json'), 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(join(dir, 'bvllm.json'), JSON.stringify(config));
  return dir;
}

// Issue #20 item 7: an ablation at inference is one config key; the weights the new kind does not read are skipped
// with one notice naming them, on the ONNX and the tfjs engines alike.
describe('ablation by kind on the default model', () => {
  for (const [label, edit, skipped] of [
    ['frameSelect: uniform', (c: Record<string, unknown>) => void (c.frameSelect = { kind: 'uniform' }), /vlm_att_encoder_temporal\.\* \(\d+\).*vlm_att_query_temporal/],
    ['spatialSample: pool', (c: Record<string, unknown>) => void (c.spatialSample = { kind: 'pool', outputGrid: [2, 2] }), /vlm_att_encoder_spatial\.\* \(\d+\).*vlm_att_query_spatial/],
  ] as const)
    for (const runtime of ['onnx', 'tfjs'])
      it(`${label} on ${runtime} answers, and names the skipped weights in one warning line`, async () => {
        const model = ablated(edit);
        const run = await bvllm(['ask', video, 'What shape flashed briefly?', '--model', model, '--runtime', runtime, '--json', '--max-new-tokens', '4']);
        expect(run.code).toBe(0);
        const warnings = run.stderr.split('\n').filter((line) => line.startsWith('bvllm: warning:'));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/skipping \d+ weight\(s\) the config does not use/);
        expect(warnings[0]).toMatch(skipped);
        const out = JSON.parse(run.stdout) as { answer: string; selection: { frames: unknown[] } };
        expect(typeof out.answer).toBe('string');
        expect(out.selection.frames.length).toBeGreaterThan(0);
      });

  it('the unchanged default model gives no warning', async () => {
    const run = await bvllm(['ask', video, 'What shape flashed briefly?', '--json', '--max-new-tokens', '4']);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toMatch(/warning/);
  });
});
