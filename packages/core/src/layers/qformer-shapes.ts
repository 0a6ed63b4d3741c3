import type { QFormerConfig } from './qformer.js';

/**
 * The parameters {@link QFormer} creates under `prefix`, by checkpoint key, from the config alone (no tfjs
 * variables): what `bvllm convert` plans against and validates a checkpoint with. Matrices are `[out, in]`.
 */
export function qformerParameterShapes(prefix: string, c: Readonly<QFormerConfig>): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const h = c.hiddenSize;
  const linear = (key: string, inF: number, outF: number) => {
    shapes.set(`${key}.weight`, [outF, inF]);
    shapes.set(`${key}.bias`, [outF]);
  };
  const norm = (key: string) => {
    shapes.set(`${key}.weight`, [h]);
    shapes.set(`${key}.bias`, [h]);
  };
  const attention = (key: string, keyWidth: number) => {
    linear(`${key}.attention.query`, h, h);
    linear(`${key}.attention.key`, keyWidth, h);
    linear(`${key}.attention.value`, keyWidth, h);
    linear(`${key}.output.dense`, h, h);
    norm(`${key}.output.LayerNorm`);
  };
  shapes.set(`${prefix}embeddings.word_embeddings.weight`, [c.vocabSize, h]);
  shapes.set(`${prefix}embeddings.position_embeddings.weight`, [c.maxPositions, h]);
  norm(`${prefix}embeddings.layernorm`);
  for (let i = 0; i < c.numLayers; i++) {
    const layer = `${prefix}encoder.layer.${i}`;
    attention(`${layer}.attention`, h);
    if (i % c.crossAttentionFrequency === 0) attention(`${layer}.crossattention`, c.encoderHiddenSize);
    for (const suffix of ['_query', '']) {
      linear(`${layer}.intermediate${suffix}.dense`, h, c.intermediateSize);
      linear(`${layer}.output${suffix}.dense`, c.intermediateSize, h);
      norm(`${layer}.output${suffix}.LayerNorm`);
    }
  }
  return shapes;
}
