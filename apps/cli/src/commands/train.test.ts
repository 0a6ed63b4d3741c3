import { cpSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { bvllm, testWorkspace, type TestWorkspace } from '../test-workspace.js';

let ws: TestWorkspace;

beforeAll(async () => {
  ws = await testWorkspace({ train: 2, test: 1 });
}, 120_000);

describe('bvllm train and eval on a dataset in the official JSON format', () => {
  it('runs stage 1 then stage 2 (LoRA attached), writes checkpoints, metrics, the loss curve and a loadable model, then evaluates it', async () => {
    const stage = (name: string, extra: string) => {
      const path = join(ws.dir, `${name}.yaml`);
      writeFileSync(path, `stage: ${name}\ndata: { annotations: ${join(ws.data, 'train.json')}, folder: ${ws.data} }\nmaxSteps: 2\nmicroBatchSize: 2\ngradientAccumulationSteps: 1\nnumFrames: 4\n${extra}`);
      return path;
    };
    const s1 = await bvllm(['train', '--config', stage('stage1', ''), '--model', ws.modelDir, '--out', join(ws.dir, 'run1')]);
    expect(s1.stderr).not.toMatch(/error/);
    expect(s1.code).toBe(0);
    expect(s1.stdout).toMatch(/^stage1: 2\/2 updates, 0 skipped, loss [\d.]+; model in /);
    const s2 = await bvllm(['train', '--config', stage('stage2', 'lora: { rank: 4, alpha: 8 }\n'), '--model', join(ws.dir, 'run1', 'model'), '--out', join(ws.dir, 'run2')]);
    expect(s2.code).toBe(0);
    const trained = join(ws.dir, 'run2', 'model');
    const config = JSON.parse(readFileSync(join(trained, 'bvllm.json'), 'utf8')) as { lora?: { r: number } };
    expect(config.lora?.r).toBe(4);
    const metrics = readFileSync(join(ws.dir, 'run2', 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(2);
    expect(existsSync(join(ws.dir, 'run2', 'loss.png'))).toBe(true);
    const evaluated = await bvllm(['eval', '--data', join(ws.data, 'test.json'), '--model', trained, '--out', join(ws.dir, 'eval')]);
    expect(evaluated.code).toBe(0);
    // One test video asked in both forms: an MCQA line and an open-ended line, each over one question.
    expect(evaluated.stdout).toMatch(/^mcqa: [\d.]+% of 1 \(/m);
    expect(evaluated.stdout).toMatch(/^open-qa: [\d.]+% of 1 \(/m);
    expect(existsSync(join(ws.dir, 'eval', 'perception-test.md'))).toBe(true);
  });

  it('--resume latest passes over a damaged newest checkpoint and says so; metrics keep one line per update', async () => {
    const path = join(ws.dir, 'resume.yaml');
    writeFileSync(path, `stage: stage1\ndata: { annotations: ${join(ws.data, 'train.json')}, folder: ${ws.data} }\nmaxSteps: 2\nmicroBatchSize: 2\ngradientAccumulationSteps: 1\nnumFrames: 4\ncheckpointEvery: 1\n`);
    const out = join(ws.dir, 'resumed');
    expect((await bvllm(['train', '--config', path, '--model', ws.modelDir, '--out', out])).code).toBe(0);
    truncateSync(join(out, 'step-00000002', 'trainable.safetensors'), 16);
    mkdirSync(join(out, '.step-00000003.tmp-999999999'));
    const again = await bvllm(['train', '--config', path, '--model', ws.modelDir, '--out', out, '--resume', 'latest']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`cannot resume from ${join(out, 'step-00000002')}: `);
    expect(again.stderr).toContain(`resuming from ${join(out, 'step-00000001')}, the newest readable checkpoint`);
    expect(again.stderr).toContain('removed 1 unfinished checkpoint folder(s): .step-00000003.tmp-999999999');
    expect(existsSync(join(out, '.step-00000003.tmp-999999999'))).toBe(false);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2]);
  });

  it('refuses an invalid stage config with the field path, in one line', async () => {
    const path = join(ws.dir, 'bad.yaml');
    writeFileSync(path, `stage: stage1\ndata: { annotations: x.json, folder: . }\nlr: -1\n`);
    const out = await bvllm(['train', '--config', path, '--model', ws.modelDir, '--out', join(ws.dir, 'bad')]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^bvllm: error CONFIG_INVALID: .*lr/);
  });
});

describe('bvllm train-tiny', () => {
  /** The last progress line of a phase: its updates done and in all. */
  const bar = (stderr: string, label: string) => {
    const lines = stderr.split('\n').filter((l) => l.startsWith(`${label} [`));
    const [, done, total] = /\] (\d+)\/(\d+) /.exec(lines.at(-1) ?? '') ?? [];
    return { done: Number(done), total: Number(total), eta: lines.every((l) => / ETA \d\d:\d\d:\d\d$/.test(l)) };
  };

  it('takes every phase budget from its flag, draws a progress bar with ETA for each phase, checkpoints on Ctrl-C and resumes bit for bit; --base refuses data with words its vocabulary lacks', async () => {
    const work = join(ws.dir, 'tiny-work');
    const flags = ['--vision-steps', '40', '--pretrain-videos', '1', '--sampler-steps', '2', '--align-steps', '4', '--lm-epochs', '1', '--label-epochs', '2', '--stage1-epochs', '1', '--stage2-epochs', '2'];
    const run = await bvllm(['train-tiny', '--data', ws.data, '--out', join(ws.dir, 'tiny'), '--work', work, ...flags], 600_000);
    expect(run.stderr).not.toMatch(/bvllm: error/);
    expect(run.code).toBe(0);
    expect(bar(run.stderr, 'vision pre-training')).toEqual({ done: 40, total: 40, eta: true });
    expect(bar(run.stderr, 'spatial Q-Former pre-training')).toEqual({ done: 2, total: 2, eta: true });
    expect(bar(run.stderr, 'alignment with the label tokens')).toEqual({ done: 4, total: 4, eta: true });
    // One epoch of the warm-up reading captions, two reading label tokens, over the same samples (8 per update).
    const samples = (JSON.parse(readFileSync(join(ws.data, 'train.json'), 'utf8')) as unknown[]).length + 2;
    const captions = bar(run.stderr, 'LLM warm-up, captions');
    expect(captions).toEqual({ done: captions.total, total: Math.ceil((samples + 2) / 8), eta: true });
    expect(bar(run.stderr, 'LLM warm-up, label tokens')).toEqual({ done: 2 * captions.total, total: 2 * captions.total, eta: true });
    expect(bar(run.stderr, 'stage 1')).toEqual({ done: 1, total: 1, eta: true });
    expect(bar(run.stderr, 'stage 2')).toEqual({ done: 2 * Math.ceil(samples / 8), total: 2 * Math.ceil(samples / 8), eta: true });
    expect(existsSync(join(ws.dir, 'tiny', 'model.safetensors'))).toBe(true);
    // Starting over a work folder that holds a run needs --resume.
    expect((await bvllm(['train-tiny', '--data', ws.data, '--out', join(ws.dir, 'tiny'), '--work', work, ...flags])).stderr).toMatch(/^bvllm: error INVALID_ARGUMENT: .*--resume/m);

    // Ctrl-C in the middle of the tower's pre-training checkpoints it; --resume then ends with the same weights.
    const interruptedWork = join(ws.dir, 'tiny-interrupted');
    const args = ['train-tiny', '--data', ws.data, '--out', join(ws.dir, 'tiny-resumed'), '--work', interruptedWork, ...flags];
    const stopped = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url)), ...args]);
      let stderr = '';
      // One Ctrl-C: a second one kills the process at once, as a user pressing it twice means.
      let sent = false;
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (!sent && /vision pre-training \[[#-]+\] 5\/40 /.test(stderr)) sent = child.kill('SIGINT');
      });
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toMatch(/^bvllm: error ABORTED: /m);
    expect(stopped.stderr).toContain(`stopped with checkpoints in ${interruptedWork}; run the same command with --resume to continue`);
    expect(stopped.stderr).not.toContain('vision pre-training [####################] 40/40');
    const resumed = await bvllm([...args, '--resume'], 600_000);
    expect(resumed.code).toBe(0);
    expect(readFileSync(join(ws.dir, 'tiny-resumed', 'model.safetensors')).equals(readFileSync(join(ws.dir, 'tiny', 'model.safetensors')))).toBe(true);

    const data = join(ws.dir, 'new-words');
    mkdirSync(data);
    for (const file of ['val.json', 'test.json', 'scenes.json', 'meta.json']) cpSync(join(ws.data, file), join(data, file));
    const train = JSON.parse(readFileSync(join(ws.data, 'train.json'), 'utf8')) as { conversations: { value: string }[] }[];
    train[0].conversations[0].value = '<video>\nWhich zebra crossed?';
    writeFileSync(join(data, 'train.json'), JSON.stringify(train));
    const refused = await bvllm(['train-tiny', '--data', data, '--out', join(ws.dir, 'refused'), '--work', join(ws.dir, 'refused-work'), '--base', join(work, 'base')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^bvllm: error VOCABULARY_MISMATCH: .*"zebra", "crossed"/m);
  }, 600_000);
});
