/**
 * `bvllm ask --model` on hostile model folders (issue #20 item 4): copies of the shipped model with one thing wrong.
 * Each must end in one coded line (`bvllm: error <CODE>: …`), never `unexpected error:`, and never hang. The first
 * five are the cases that printed `unexpected error:` before.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url));
const video = fileURLToPath(new URL('../../../../examples/brief-event.mp4', import.meta.url));
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'bvllm-cli-hostile-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const config = (change: (c: Record<string, any>) => void) => (dir: string) => {
  const c = JSON.parse(readFileSync(join(dir, 'bvllm.json'), 'utf8'));
  change(c);
  writeFileSync(join(dir, 'bvllm.json'), JSON.stringify(c));
};

/** Rewrites the weights file's header with `change` (the data region is kept). */
const header = (change: (h: Record<string, { data_offsets: number[] }>, data: Buffer) => string) => (dir: string) => {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const data = Buffer.from(bytes.subarray(8 + n));
  const text = change(JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')), data);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  writeFileSync(path, Buffer.concat([length, Buffer.from(text), data]));
};

const fifo = (name: string) => (dir: string) => {
  rmSync(join(dir, name));
  execFileSync('mkfifo', [join(dir, name)]);
};

const cases: [string, (dir: string) => void, string][] = [
  ['bvllm.json holding null', (d) => writeFileSync(join(d, 'bvllm.json'), 'null'), 'CHECKPOINT_FORMAT'],
  ['a directory as model.safetensors', (d) => (rmSync(join(d, 'model.safetensors')), mkdirSync(join(d, 'model.safetensors'))), 'SAFETENSORS_FORMAT'],
  ['a bad vision tower field', config((c) => (c.vision.vit.family = 'nope')), 'CONFIG_INVALID'],
  ['a bad sampling field', config((c) => (c.vision.sampling.samplesPerSec = 0)), 'CONFIG_INVALID'],
  ['an unknown generation field', config((c) => (c.generation.foo = 1)), 'CONFIG_INVALID'],
  ['a bad spatial Q-Former field', config((c) => (c.spatialSample.qformer.numHeads = 3)), 'CONFIG_INVALID'],
  ['a corrupt onnx/manifest.json', (d) => (mkdirSync(join(d, 'onnx')), writeFileSync(join(d, 'onnx', 'manifest.json'), '{')), 'CHECKPOINT_FORMAT'],
  ['a FIFO as model.safetensors', fifo('model.safetensors'), 'SAFETENSORS_FORMAT'],
  ['a FIFO as bvllm.json', fifo('bvllm.json'), 'CHECKPOINT_FORMAT'],
  ['llm.intermediateSize 2000000', config((c) => (c.llm.intermediateSize = 2_000_000)), 'WEIGHTS_MISMATCH'],
  ['a weights header repeating a name', header((h) => JSON.stringify(h).replace('"model.norm.weight":', '"model.layers.1.input_layernorm.weight":')), 'SAFETENSORS_FORMAT'],
  ['a NaN weight', header((h, data) => (data.writeFloatLE(Number.NaN, h['model.norm.weight']!.data_offsets[0]!), JSON.stringify(h))), 'WEIGHTS_NON_FINITE'],
  ['a misspelt weight name', header((h) => JSON.stringify(h).replace('"model.norm.weight":', '"model.norm.wieght":')), 'WEIGHTS_MISMATCH'],
];

describe('bvllm ask --model on a hostile folder', () => {
  it.each(cases)('%s: one coded error line, exit 1', (name, edit, code) => {
    const dir = join(root, name.replace(/\W+/g, '-'));
    cpSync(defaultModelDir(), dir, { recursive: true });
    edit(dir);
    const run = spawnSync(process.execPath, [bin, 'ask', video, 'What shape?', '--model', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(run.signal, 'it hung').toBeNull();
    expect(run.status).toBe(1);
    expect(run.stderr).not.toContain('unexpected error');
    expect(run.stderr).toMatch(new RegExp(`^bvllm: error ${code}: .+\\n$`));
  });

  it('--allow-non-finite-weights loads a NaN folder with a warning naming the tensor', () => {
    const dir = join(root, 'nan-allowed');
    cpSync(defaultModelDir(), dir, { recursive: true });
    cases.find(([name]) => name === 'a NaN weight')![1](dir);
    const run = spawnSync(process.execPath, [bin, 'ask', video, 'What shape?', '--model', dir, '--allow-non-finite-weights', '--max-new-tokens', '2'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/^bvllm: warning: .*tensor "model\.norm\.weight" holds 1 non-finite value\(s\)/m);
  });
});
