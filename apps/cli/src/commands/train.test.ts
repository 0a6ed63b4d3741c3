import { existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bvllm, testWorkspace, type TestWorkspace } from '../test-workspace.js';

let ws: TestWorkspace;

beforeAll(async () => {
  ws = await testWorkspace({ train: 2, test: 1 });
}, 120_000);

describe('bvllm train and eval on a dataset in the official JSON format', () => {
  it('runs stage 1 then stage 2 (LoRA attached), writes checkpoints, metrics, the loss curve and a loadable model, then evaluates it', () => {
    const stage = (name: string, extra: string) => {
      const path = join(ws.dir, `${name}.yaml`);
      writeFileSync(path, `stage: ${name}\ndata: { annotations: ${join(ws.data, 'train.json')}, folder: ${ws.data} }\nmaxSteps: 2\nmicroBatchSize: 2\ngradientAccumulationSteps: 1\nnumFrames: 4\n${extra}`);
      return path;
    };
    const s1 = bvllm(['train', '--config', stage('stage1', ''), '--model', ws.modelDir, '--out', join(ws.dir, 'run1')]);
    expect(s1.stderr).not.toMatch(/error/);
    expect(s1.code).toBe(0);
    expect(s1.stdout).toMatch(/^stage1: 2\/2 updates, 0 skipped, loss [\d.]+; model in /);
    const s2 = bvllm(['train', '--config', stage('stage2', 'lora: { rank: 4, alpha: 8 }\n'), '--model', join(ws.dir, 'run1', 'model'), '--out', join(ws.dir, 'run2')]);
    expect(s2.code).toBe(0);
    const trained = join(ws.dir, 'run2', 'model');
    const config = JSON.parse(readFileSync(join(trained, 'bvllm.json'), 'utf8')) as { lora?: { r: number } };
    expect(config.lora?.r).toBe(4);
    const metrics = readFileSync(join(ws.dir, 'run2', 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(2);
    expect(existsSync(join(ws.dir, 'run2', 'loss.png'))).toBe(true);
    const evaluated = bvllm(['eval', '--data', join(ws.data, 'test.json'), '--model', trained, '--out', join(ws.dir, 'eval')]);
    expect(evaluated.code).toBe(0);
    // One test video asked in both forms: an MCQA line and an open-ended line, each over one question.
    expect(evaluated.stdout).toMatch(/^mcqa: [\d.]+% of 1 \(/m);
    expect(evaluated.stdout).toMatch(/^open-qa: [\d.]+% of 1 \(/m);
    expect(existsSync(join(ws.dir, 'eval', 'perception-test.md'))).toBe(true);
  });

  it('--resume latest passes over a damaged newest checkpoint and says so; metrics keep one line per update', () => {
    const path = join(ws.dir, 'resume.yaml');
    writeFileSync(path, `stage: stage1\ndata: { annotations: ${join(ws.data, 'train.json')}, folder: ${ws.data} }\nmaxSteps: 2\nmicroBatchSize: 2\ngradientAccumulationSteps: 1\nnumFrames: 4\ncheckpointEvery: 1\n`);
    const out = join(ws.dir, 'resumed');
    expect(bvllm(['train', '--config', path, '--model', ws.modelDir, '--out', out]).code).toBe(0);
    truncateSync(join(out, 'step-00000002', 'trainable.safetensors'), 16);
    mkdirSync(join(out, '.step-00000003.tmp-999999999'));
    const again = bvllm(['train', '--config', path, '--model', ws.modelDir, '--out', out, '--resume', 'latest']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`cannot resume from ${join(out, 'step-00000002')}: `);
    expect(again.stderr).toContain(`resuming from ${join(out, 'step-00000001')}, the newest readable checkpoint`);
    expect(again.stderr).toContain('removed 1 unfinished checkpoint folder(s): .step-00000003.tmp-999999999');
    expect(existsSync(join(out, '.step-00000003.tmp-999999999'))).toBe(false);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2]);
  });

  it('refuses an invalid stage config with the field path, in one line', () => {
    const path = join(ws.dir, 'bad.yaml');
    writeFileSync(path, `stage: stage1\ndata: { annotations: x.json, folder: . }\nlr: -1\n`);
    const out = bvllm(['train', '--config', path, '--model', ws.modelDir, '--out', join(ws.dir, 'bad')]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^bvllm: error CONFIG_INVALID: .*lr/);
  });
});
