/**
 * Training samples in the VideoLLaMA2/LLaVA JSON format (spec §2): a list of
 * `{id, video | image, conversations: [{from: human|gpt, value}]}` with media paths relative to a data folder.
 * Entries are checked lazily, one by one, so a malformed entry, a missing file or an over-long sample throws a
 * {@link DatasetError} for that sample only and the training loop skips it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { BvllmError } from '@bvllm/core';
import { DatasetError } from './dataset-error.js';
import {
  MODAL_TOKEN_OF,
  moveModalTokenToFront,
  preprocessChat,
  preprocessPlain,
  type ChatRenderer,
  type Modality,
  type TextTokenizer,
  type Turn,
} from './preprocess.js';
import type { TrainDataset } from './trainable-model.js';

/** One annotation entry. Parsed leniently (extra keys pass): the files are others' data, not our config. */
export const annotationEntry = z
  .object({
    id: z.union([z.string(), z.number()]),
    video: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
    conversations: z.array(z.object({ from: z.enum(['human', 'gpt']), value: z.string() }).passthrough()).min(1),
  })
  .passthrough()
  .refine((e) => !(e.video && e.image), { message: 'an entry holds a video or an image, not both' });
export type AnnotationEntry = z.infer<typeof annotationEntry>;

/** A sample ready to collate. */
export interface InstructSample {
  id: string;
  modality: Modality;
  /** Absolute path of the video or image; absent for text-only samples. */
  mediaPath?: string;
  /** Ids with one placeholder (−201 / −200) for a visual sample. Length Lt ≤ modelMaxLength. */
  inputIds: number[];
  /** −100 where the loss skips. Same length as inputIds. */
  labels: number[];
  /** The text that conditions the Q-Formers: the tagged human turn without its tag; "" for text-only (spec §1.2). */
  question: string;
}

export interface InstructDatasetOptions {
  /** `--data_folder`: media paths in the entries are relative to it. */
  folder: string;
  tokenizer: TextTokenizer;
  /** `plain` for stage 1, `chat` (through `chat`) for stage 2 (spec §2). */
  format: 'plain' | 'chat';
  /** Needed by the `chat` format. */
  chat?: ChatRenderer;
  /** Samples with more text ids than this are skipped (`--model_max_length`; the placeholder counts as one). */
  modelMaxLength: number;
}

export class InstructDataset implements TrainDataset<InstructSample> {
  constructor(
    private readonly entries: readonly unknown[],
    private readonly options: InstructDatasetOptions,
  ) {
    if (options.format === 'chat' && !options.chat) throw new DatasetError('(all)', 'the chat format needs a chat renderer');
  }

  /** Reads an annotation file; only a file that is not a JSON list fails as a whole. */
  static fromFile(path: string, options: InstructDatasetOptions): InstructDataset {
    let entries: unknown;
    try {
      entries = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      throw new BvllmError('DATASET', `${path}: not a readable JSON file: ${(cause as Error).message}`, { cause });
    }
    if (!Array.isArray(entries)) throw new BvllmError('DATASET', `${path}: expected a JSON list of samples, got ${typeof entries}`);
    return new InstructDataset(entries, options);
  }

  get length(): number {
    return this.entries.length;
  }

  idOf(index: number): string {
    const id = (this.entries[index] as { id?: unknown } | null)?.id;
    return typeof id === 'string' || typeof id === 'number' ? String(id) : `#${index}`;
  }

  get(index: number): InstructSample {
    const id = this.idOf(index);
    const parsed = annotationEntry.safeParse(this.entries[index]);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new DatasetError(id, `malformed entry: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    const entry = parsed.data;
    const modality: Modality = entry.video ? 'video' : entry.image ? 'image' : 'text';
    const turns: Turn[] = entry.conversations.map((t) => ({ from: t.from, value: t.value }));
    let mediaPath: string | undefined;
    let question = '';
    let prepared = turns;
    const modalToken = modality === 'text' ? undefined : MODAL_TOKEN_OF[modality];
    if (modalToken) {
      const relative = (entry.video ?? entry.image)!;
      mediaPath = isAbsolute(relative) ? relative : join(this.options.folder, relative);
      if (!existsSync(mediaPath)) throw new DatasetError(id, `missing media file ${mediaPath}`);
      ({ turns: prepared, question } = moveModalTokenToFront(id, turns, modalToken));
    }
    const { inputIds, labels } =
      this.options.format === 'plain'
        ? preprocessPlain(id, prepared, this.options.tokenizer, modalToken)
        : preprocessChat(id, prepared, this.options.tokenizer, this.options.chat!, modalToken);
    if (inputIds.length > this.options.modelMaxLength)
      throw new DatasetError(id, `too long: ${inputIds.length} tokens, modelMaxLength is ${this.options.modelMaxLength}`);
    if (!labels.some((l) => l >= 0)) throw new DatasetError(id, 'no supervised token');
    return { id, modality, mediaPath, inputIds, labels, question };
  }
}
