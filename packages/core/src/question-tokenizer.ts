/**
 * The BERT WordPiece tokenizer that turns the question into the Q-Formers' text input (spec §1.1 "text", D14):
 * uncased bert-base vocabulary (InstructBLIP adds `[DEC]`, unused here), `[CLS] question [SEP]`, and truncation on
 * the LEFT to 256 tokens as the official code sets `truncation_side="left"` (`bvlm_arch.py:140, 215, 371-377`), so
 * a long prompt keeps its end, where the question usually is.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as tf from '@tensorflow/tfjs-core';
import { BvllmError } from './errors.js';
import type { QuestionTokens } from './tensor-types.js';

/** A tokenizer file is missing, malformed, or lacks a token the encoding needs. */
export class TokenizerError extends BvllmError {
  constructor(
    readonly source: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('TOKENIZER', `${source}: ${reason}`, options);
  }
}

/** The official code's `max_length` for the question (spec §1.1). */
export const QUESTION_MAX_LENGTH = 256;

const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

/** One `added_tokens` entry of a Hugging Face `tokenizer.json` for a special token matched verbatim. */
export function specialTokenEntry(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * A Hugging Face `tokenizer.json` for a BERT WordPiece vocabulary (one token per line of `vocab.txt`, id = line
 * number), equivalent to `BertTokenizerFast(vocab.txt, do_lower_case)`: BERT normaliser (lower-casing also strips
 * accents, as BERT's), BERT pre-tokeniser (whitespace and punctuation), WordPiece with `##` continuations.
 */
export function wordPieceTokenizerJson(vocab: readonly string[], options: { lowercase?: boolean } = {}): Record<string, unknown> {
  const ids = new Map<string, number>();
  vocab.forEach((token, id) => {
    if (!ids.has(token)) ids.set(token, id);
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.filter((t) => ids.has(t)).map((content) => specialTokenEntry(ids.get(content)!, content)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: options.lowercase ?? true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    // Special tokens are added by QuestionTokenizer after truncation, so the file needs no post-processor.
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(ids) },
  };
}

/** Question text → {@link QuestionTokens}. */
export class QuestionTokenizer {
  private readonly clsId: number;
  private readonly sepId: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly source: string,
    /** Longest encoding, `[CLS]` and `[SEP]` included. */
    readonly maxLength: number,
    /** The special added tokens' ids by text, kept out of `tokenizer` so that question text cannot produce them. */
    specialIds: ReadonlyMap<string, number>,
  ) {
    const id = (token: string) => {
      const value = specialIds.get(token) ?? tokenizer.token_to_id(token);
      if (value === undefined) throw new TokenizerError(source, `vocabulary has no ${token} token`);
      return value;
    };
    this.clsId = id('[CLS]');
    this.sepId = id('[SEP]');
    if (maxLength < 2) throw new TokenizerError(source, `maxLength ${maxLength} leaves no room for [CLS] and [SEP]`);
  }

  /** From a parsed HF `tokenizer.json` (a BERT WordPiece one; its own post-processor and truncation are ignored). */
  static fromTokenizerJson(json: Record<string, unknown>, options: { maxLength?: number; source?: string } = {}): QuestionTokenizer {
    const source = options.source ?? 'tokenizer.json';
    const model = json.model as { type?: string } | undefined;
    if (model?.type !== 'WordPiece') throw new TokenizerError(source, `expected a WordPiece model, got ${String(model?.type)}`);
    // The question is user text: `[SEP]` or `[CLS]` typed into it must stay text (HF `split_special_tokens=True`),
    // so the special added tokens are dropped from the tokenizer and only encodeIds inserts their ids.
    const added = (json.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
    const specialIds = new Map(added.filter((t) => t.special).map((t) => [t.content, t.id]));
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer({ ...json, added_tokens: added.filter((t) => !t.special) }, {});
    } catch (cause) {
      throw new TokenizerError(source, `cannot build the tokenizer (${(cause as Error).message})`, { cause });
    }
    return new QuestionTokenizer(tokenizer, source, options.maxLength ?? QUESTION_MAX_LENGTH, specialIds);
  }

  /** From the text of a BERT `vocab.txt`: one token per line, id = line number. */
  static fromVocabTxt(text: string, options: { lowercase?: boolean; maxLength?: number; source?: string } = {}): QuestionTokenizer {
    const vocab = text.split(/\r?\n/);
    if (vocab[vocab.length - 1] === '') vocab.pop();
    if (vocab.length === 0) throw new TokenizerError(options.source ?? 'vocab.txt', 'empty vocabulary');
    return QuestionTokenizer.fromTokenizerJson(wordPieceTokenizerJson(vocab, options), { ...options, source: options.source ?? 'vocab.txt' });
  }

  /** From a HF tokenizer folder: `tokenizer.json` when present, else `vocab.txt` (uncased unless `tokenizer_config.json` says otherwise). */
  static fromDir(dir: string, options: { maxLength?: number } = {}): QuestionTokenizer {
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf8');
      } catch (cause) {
        throw new TokenizerError(join(dir, name), `cannot read (${(cause as Error).message})`, { cause });
      }
    };
    const parse = (name: string) => {
      try {
        return JSON.parse(read(name)) as Record<string, unknown>;
      } catch (cause) {
        if (cause instanceof TokenizerError) throw cause;
        throw new TokenizerError(join(dir, name), 'not valid JSON', { cause });
      }
    };
    if (existsSync(join(dir, 'tokenizer.json'))) return QuestionTokenizer.fromTokenizerJson(parse('tokenizer.json'), { ...options, source: join(dir, 'tokenizer.json') });
    const config = existsSync(join(dir, 'tokenizer_config.json')) ? parse('tokenizer_config.json') : {};
    const lowercase = typeof config.do_lower_case === 'boolean' ? config.do_lower_case : true;
    return QuestionTokenizer.fromVocabTxt(read('vocab.txt'), { ...options, lowercase, source: join(dir, 'vocab.txt') });
  }

  /** `[CLS] … [SEP]` ids; when too long, the first word pieces are dropped (left truncation), the specials kept. */
  encodeIds(question: string): number[] {
    const pieces = this.tokenizer.encode(question, { add_special_tokens: false }).ids;
    const room = this.maxLength - 2;
    // At most maxLength − 2 ids are spread, never the whole (possibly huge) encoding.
    return [this.clsId, ...pieces.slice(Math.max(0, pieces.length - room)), this.sepId];
  }

  /** The question as int32 `[1, Lt]` ids and an all-ones mask (one question, so no padding). */
  encode(question: string): QuestionTokens {
    const ids = this.encodeIds(question);
    return {
      inputIds: tf.tensor2d([ids], [1, ids.length], 'int32'),
      attentionMask: tf.ones([1, ids.length], 'int32') as tf.Tensor2D,
    };
  }

  /** Word pieces of `question` (no specials), for logs. */
  tokenize(question: string): string[] {
    return this.tokenizer.tokenize(question);
  }
}
