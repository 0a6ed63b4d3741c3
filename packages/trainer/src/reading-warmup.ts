/**
 * Datasets for an LLM warm-up as reading (the default model's, in @bvllm/bvllm-tiny): every training sample with its
 * video's caption standing where the visual tokens will stand. The official model starts from Qwen2-7B-Instruct, an
 * LLM that already answers from what its prompt holds; the default model's Qwen2 starts from scratch, and warmed up
 * on the questions alone it learns to answer them from their priors, and then never looks at the visual tokens
 * (measured: another video's frames left the loss unchanged). Read with the caption in place of `<video>`, the
 * answer is in the context, so the LLM learns to look there; stages 1 and 2 then only have to make the visual tokens
 * say what the caption said.
 */
import { DatasetError } from './dataset-error.js';
import type { InstructSample } from './instruct-dataset.js';
import { IGNORE_INDEX, VIDEO_TOKEN_INDEX } from './preprocess.js';
import type { TrainDataset } from './trainable-model.js';

/**
 * A dataset of video samples read as text: the `<video>` placeholder of each sample is replaced by the token ids of
 * its video's caption (unsupervised, as the visual tokens are), so the sample keeps the exact layout of stage 1
 * (plain) or stage 2 (chat) around it.
 */
export class CaptionInContextDataset implements TrainDataset<InstructSample> {
  /**
   * @param inner the samples, each holding one `<video>` placeholder
   * @param captionIds tokenised caption by absolute video path (`InstructSample.mediaPath`)
   */
  constructor(
    private readonly inner: TrainDataset<InstructSample>,
    private readonly captionIds: ReadonlyMap<string, readonly number[]>,
  ) {}

  get length(): number {
    return this.inner.length;
  }

  idOf(index: number): string {
    return this.inner.idOf?.(index) ?? String(index);
  }

  get(index: number): InstructSample {
    const sample = this.inner.get(index);
    const caption = sample.mediaPath ? this.captionIds.get(sample.mediaPath) : undefined;
    if (!caption) throw new DatasetError(sample.id, `no caption for ${sample.mediaPath ?? 'a sample without video'}`);
    const at = sample.inputIds.indexOf(VIDEO_TOKEN_INDEX);
    if (at < 0) throw new DatasetError(sample.id, 'no <video> placeholder to put the caption in');
    const splice = <T>(xs: readonly T[], fill: readonly T[]) => [...xs.slice(0, at), ...fill, ...xs.slice(at + 1)];
    return {
      ...sample,
      modality: 'text',
      mediaPath: undefined,
      inputIds: splice(sample.inputIds, caption),
      labels: splice(sample.labels, caption.map(() => IGNORE_INDEX)),
      question: '',
    };
  }
}

/** Several datasets end to end (the warm-up reads both formats in one run, so neither is forgotten). */
export class ConcatDataset<Sample> implements TrainDataset<Sample> {
  constructor(private readonly parts: readonly TrainDataset<Sample>[]) {}

  get length(): number {
    return this.parts.reduce((n, part) => n + part.length, 0);
  }

  private locate(index: number): [TrainDataset<Sample>, number] {
    let rest = index;
    for (const part of this.parts) {
      if (rest < part.length) return [part, rest];
      rest -= part.length;
    }
    throw new RangeError(`index ${index} is past the ${this.length} samples`);
  }

  get(index: number): Sample {
    const [part, local] = this.locate(index);
    return part.get(local);
  }

  idOf(index: number): string {
    const [part, local] = this.locate(index);
    return part.idOf?.(local) ?? String(index);
  }
}
