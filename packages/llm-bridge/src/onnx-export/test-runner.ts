/**
 * Test support: runs an exported Qwen2 folder step by step in onnxruntime, feeding exactly what the fixture README
 * prescribes (int64 ids, mask over past + current, positions `cumsum(mask) − 1` with padded slots at 1, empty
 * `[B, Hkv, 0, d]` pasts on the first step). Independent of the runtime package so the exporter is tested alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSession, ort, type OrtSession } from '@bvllm/onnx';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const int64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0].length]);

export interface RunnerStep {
  /** Per sequence, its `L · V` logits (`V` for a last-position export). */
  allLogits: Float32Array[];
  /** Per sequence, the last position's logits. */
  lastLogits: number[][];
  /** Per sequence, the argmax at every position. */
  argmax: number[][];
  present: Map<string, ort.Tensor>;
}

export class OnnxQwen2Runner {
  private constructor(
    private readonly embed: OrtSession,
    private readonly decoder: OrtSession,
    readonly vocabSize: number,
    private readonly layers: number,
    private readonly kvHeads: number,
    private readonly headDim: number,
  ) {}

  static async open(dir: string): Promise<OnnxQwen2Runner> {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const embed = await createSession(join(dir, 'embed_tokens.onnx'), { threads: 1 });
    const decoder = await createSession(join(dir, 'decoder_model_merged.onnx'), { threads: 1 });
    return new OnnxQwen2Runner(embed, decoder, config.vocab_size, config.num_hidden_layers, config.num_key_value_heads, config.head_dim);
  }

  /** `ids [B][L]`; `mask [B][P + L]`; `past` the previous step's `present` (empty on the first step). */
  async step(ids: number[][], mask: number[][], past?: Map<string, ort.Tensor>): Promise<RunnerStep> {
    const batch = ids.length;
    const length = ids[0].length;
    const { inputs_embeds: embeds } = await this.embed.run({ input_ids: int64(ids) });
    const positions = mask.map((row) => {
      let seen = 0;
      return row.map((m) => (m ? seen++ : 1)).slice(-length);
    });
    const feeds: Record<string, ort.Tensor> = { inputs_embeds: embeds, attention_mask: int64(mask), position_ids: int64(positions) };
    for (let i = 0; i < this.layers; i++)
      for (const kind of ['key', 'value'])
        feeds[`past_key_values.${i}.${kind}`] = past?.get(`present.${i}.${kind}`) ?? new ort.Tensor('float32', new Float32Array(0), [batch, this.kvHeads, 0, this.headDim]);
    const out = await this.decoder.run(feeds);
    const logits = out.logits.data as Float32Array;
    const v = this.vocabSize;
    // The logits' own length: `length`, or 1 for a `logitsFor: 'last'` export.
    const rows = out.logits.dims[1];
    const allLogits = ids.map((_, b) => logits.slice(b * rows * v, (b + 1) * rows * v));
    const argmax = allLogits.map((r) =>
      Array.from({ length: r.length / v }, (_, p) => {
        let best = 0;
        for (let t = 1; t < v; t++) if (r[p * v + t] > r[p * v + best]) best = t;
        return best;
      }),
    );
    const present = new Map(Object.entries(out).filter(([name]) => name.startsWith('present.')));
    return { allLogits, lastLogits: allLogits.map((r) => Array.from(r.slice(r.length - v))), argmax, present };
  }

  async release(): Promise<void> {
    await this.embed.release();
    await this.decoder.release();
  }
}

/** `steps` greedy tokens after `prompt`, batch 1, through the cache. */
export async function greedy(runner: OnnxQwen2Runner, prompt: number[], steps: number): Promise<number[]> {
  const tokens: number[] = [];
  let step = await runner.step([prompt], [prompt.map(() => 1)]);
  for (let i = 0; i < steps; i++) {
    const next = step.argmax[0][step.argmax[0].length - 1];
    tokens.push(next);
    step = await runner.step([[next]], [Array(prompt.length + i + 1).fill(1)], step.present);
  }
  return tokens;
}
