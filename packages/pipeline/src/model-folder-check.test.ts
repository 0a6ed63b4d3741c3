/**
 * Hostile model folders (issue #20 item 4), each made from a copy of the shipped default model with one thing
 * wrong. Each must fail fast with a typed error and a stable code, in `checkModelFolder`, `loadModel` and
 * `InferenceSession.open`, before any weight is allocated.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BvllmError, NonFiniteWeightsError, initBackend } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession } from './inference-session.js';
import { loadModel } from './model-dir.js';
import { checkModelFolder } from './model-folder-check.js';
import { shippedModelDir } from './test-model.js';

let root: string;

beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-hostile-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the default model, changed by `edit`. */
function folder(name: string, edit: (dir: string) => void): string {
  const dir = join(root, name);
  cpSync(shippedModelDir(), dir, { recursive: true });
  edit(dir);
  return dir;
}

/** Changes the folder's config in place (`change` mutates it). */
const editConfig = (change: (config: Record<string, any>) => unknown) => (dir: string) => {
  const path = join(dir, 'bvllm.json');
  const config = JSON.parse(readFileSync(path, 'utf8'));
  change(config);
  writeFileSync(path, JSON.stringify(config));
};

/** The weights file split into its header object and data region, and a writer of a new header over that data. */
function weights(dir: string) {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const data = Buffer.from(bytes.subarray(8 + n));
  const write = (headerText: string, region: Buffer = data) => {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(headerText)));
    writeFileSync(path, Buffer.concat([length, Buffer.from(headerText), region]));
  };
  return { header, data, write };
}

/** Writes `value` into one float32 weight of the folder. */
const poison = (key: string, index: number, value: number) => (dir: string) => {
  const { header, data, write } = weights(dir);
  data.writeFloatLE(value, header[key].data_offsets[0] + 4 * index);
  write(JSON.stringify(header), data);
};

/** Renames one weight in the header (its data stays where it is). */
const rename = (from: string, to: string) => (dir: string) => {
  const { header, write } = weights(dir);
  write(JSON.stringify(Object.fromEntries(Object.entries(header).map(([k, v]) => [k === from ? to : k, v]))));
};

function codeOf(attempt: () => unknown): { code: string; message: string } {
  try {
    attempt();
  } catch (error) {
    if (!BvllmError.isInstance(error)) throw error;
    return { code: error.code, message: error.message };
  }
  throw new Error('expected a typed error');
}

async function openCode(dir: string): Promise<{ code: string; message: string }> {
  try {
    const session = await InferenceSession.open(dir, { cacheDir: join(root, 'cache') });
    await session.close();
  } catch (error) {
    if (!BvllmError.isInstance(error)) throw error;
    return { code: error.code, message: error.message };
  }
  throw new Error('expected a typed error');
}

describe('hostile model folders fail fast with a stable code', () => {
  const cases: [string, (dir: string) => void, string, RegExp][] = [
    ['a FIFO as model.safetensors', (d) => (rmSync(join(d, 'model.safetensors')), execFileSync('mkfifo', [join(d, 'model.safetensors')])), 'SAFETENSORS_FORMAT', /model\.safetensors: invalid safetensors file: not a regular file \(a FIFO\)/],
    ['a directory as model.safetensors', (d) => (rmSync(join(d, 'model.safetensors')), mkdirSync(join(d, 'model.safetensors'))), 'SAFETENSORS_FORMAT', /not a regular file \(a directory\)/],
    ['a FIFO as bvllm.json', (d) => (rmSync(join(d, 'bvllm.json')), execFileSync('mkfifo', [join(d, 'bvllm.json')])), 'CHECKPOINT_FORMAT', /bvllm\.json: not a regular file \(a FIFO\)/],
    ['a FIFO as tokenizer.json', (d) => (rmSync(join(d, 'tokenizer.json')), execFileSync('mkfifo', [join(d, 'tokenizer.json')])), 'TOKENIZER', /tokenizer\.json: not a regular file \(a FIFO\)/],
    ['bvllm.json holding null', (d) => writeFileSync(join(d, 'bvllm.json'), 'null'), 'CHECKPOINT_FORMAT', /expected a JSON object, got null/],
    ['bvllm.json repeating a key', (d) => writeFileSync(join(d, 'bvllm.json'), readFileSync(join(d, 'bvllm.json'), 'utf8').replace('"name": "bvllm-tiny",', '"name": "bvllm-tiny", "name": "other",')), 'CHECKPOINT_FORMAT', /repeats the key name/],
    ['llm.intermediateSize 2000000', editConfig((c) => (c.llm.intermediateSize = 2_000_000)), 'WEIGHTS_MISMATCH', /model\.layers\.0\.mlp\.gate_proj\.weight expected \[2000000, 128\] got \[256, 128\].*the sizes come from llm\.intermediateSize = 2000000/],
    ['a bad vision tower field', editConfig((c) => (c.vision.vit.hiddenSize = -3)), 'CONFIG_INVALID', /^vision\.vit: .*hiddenSize/],
    ['a bad sampling field', editConfig((c) => (c.vision.sampling.samplesPerSec = 0)), 'CONFIG_INVALID', /^vision\.sampling: .*samplesPerSec/],
    ['an unknown generation field', editConfig((c) => (c.generation.foo = 1)), 'CONFIG_INVALID', /^generation: .*foo/],
    ['a bad generation value', editConfig((c) => (c.generation.maxNewTokens = -1)), 'CONFIG_INVALID', /^generation: .*maxNewTokens/],
    ['a bad spatial Q-Former field', editConfig((c) => (c.spatialSample.qformer.numHeads = 3)), 'CONFIG_INVALID', /^spatialSample: .*(numHeads|hiddenSize)/],
    ['a corrupt onnx/manifest.json', (d) => (mkdirSync(join(d, 'onnx')), writeFileSync(join(d, 'onnx', 'manifest.json'), '{')), 'CHECKPOINT_FORMAT', /onnx\/manifest\.json: not valid JSON/],
    ['a weights header repeating a tensor name', (d) => {
      const { header, write } = weights(d);
      // Both entries are valid byte ranges; JSON.parse would keep the second under the first name.
      const text = JSON.stringify(header).replace('"model.norm.weight":', '"model.layers.1.input_layernorm.weight":');
      write(text);
    }, 'SAFETENSORS_FORMAT', /header repeats the key "model\.layers\.1\.input_layernorm\.weight"/],
    ['a misspelt weight name', rename('model.layers.0.mlp.up_proj.weight', 'model.layers.0.mlp.up_proj.weihgt'), 'WEIGHTS_MISMATCH', /missing 1 key\(s\): model\.layers\.0\.mlp\.up_proj\.weight/],
  ];

  it.each(cases)('%s: checkModelFolder, loadModel and InferenceSession.open', async (name, edit, code, message) => {
    const dir = folder(name.replace(/\W+/g, '-'), edit);
    const rss = process.memoryUsage().rss;
    for (const failure of [codeOf(() => checkModelFolder(dir)), codeOf(() => loadModel(dir)), await openCode(dir)]) {
      expect(failure.code).toBe(code);
      expect(failure.message).toMatch(message);
    }
    // Nothing tensor-sized was allocated on the way (the intermediateSize case used to grow past 5.8 GB).
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 2 ** 20);
  });

  it('a misspelt name is refused before any tensor data is read (a NaN in the same folder is not reached)', () => {
    const dir = folder('misspelt-and-nan', (d) => {
      poison('vision_tower.encoder.layers.0.mlp.fc1.weight', 0, Number.NaN)(d);
      rename('model.norm.weight', 'model.norm.wieght')(d);
    });
    const failure = codeOf(() => loadModel(dir));
    expect(failure.code).toBe('WEIGHTS_MISMATCH');
    expect(failure.message).toMatch(/missing 1 key\(s\): model\.norm\.weight; unexpected 1 key\(s\): model\.norm\.wieght/);
  });

  it('the shipped model passes, and a session skips nothing it needs', () => {
    const { unexpected, config } = checkModelFolder(shippedModelDir());
    expect(unexpected).toEqual([]);
    expect(config.name).toBe('bvllm-tiny');
  });
});

describe('non-finite weights', () => {
  const key = 'model.layers.0.mlp.down_proj.weight';

  it.each([Number.NaN, Number.POSITIVE_INFINITY])('a weight holding %d is a NonFiniteWeightsError naming the tensor, in loadModel and when the session exports', async (value) => {
    const dir = folder(`non-finite-${value}`, poison(key, 5, value));
    expect(() => loadModel(dir)).toThrow(NonFiniteWeightsError);
    expect(() => loadModel(dir)).toThrow(new RegExp(`tensor "${key.replace(/\./g, '\\.')}" holds 1 non-finite value\\(s\\) \\(first: ${value} at flat index 5\\)`));
    const failure = await openCode(dir);
    expect(failure.code).toBe('WEIGHTS_NON_FINITE');
    expect(failure.message).toContain(key);
  });

  it("nonFinite: 'warn' loads the folder and reports the tensor instead", async () => {
    const dir = folder('non-finite-warn', poison(key, 5, Number.NaN));
    const warnings: string[] = [];
    const model = loadModel(dir, { nonFinite: 'warn', onWarning: (m) => warnings.push(m) });
    expect(Number.isNaN(model.store.get(key).dataSync()[5])).toBe(true);
    model.dispose();
    expect(warnings).toEqual([expect.stringContaining(`tensor "${key}" holds 1 non-finite value(s)`)]);
  });
});
