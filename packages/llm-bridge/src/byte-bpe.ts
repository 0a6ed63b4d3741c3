/**
 * Trains a byte-level BPE tokenizer (the Qwen2 / GPT-2 scheme) on a small corpus and writes it as a Hugging Face
 * `tokenizer.json`, so a small model's tokenizer (the default model's) loads through the same code path as a real Qwen2 tokenizer.
 * The real Qwen2 vocabulary (151,643 tokens) would make the embedding table alone ~77 MB at width 128; a few
 * hundred merges learned on the benchmark's text keep the shipped model small.
 */
import { specialTokenEntry } from '@bvllm/core';

/** Qwen2's chat special tokens, in the order Qwen2's vocabulary adds them (`<|endoftext|>` is the pad token). */
export const QWEN2_CHAT_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** GPT-2's reversible map from bytes to printable unicode characters. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return table;
}

/** Qwen2's pre-tokenizer split, without the `(?i:)` group that V8 before Node 23 cannot parse. */
const pretokenize = /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** The Qwen2 tokenizer's exact split regex, stored in the tokenizer.json for the runtime library. */
const qwenSplitRegex =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface ByteBpeOptions {
  /** Number of merges to learn; the vocabulary is 256 + merges + special tokens. */
  merges: number;
  /** Special tokens appended after the learned vocabulary, in order. */
  specialTokens: readonly string[];
}

/** Learns merges greedily by pair frequency (ties broken lexicographically, so training is deterministic). */
export function trainByteBpe(corpus: readonly string[], options: ByteBpeOptions): { vocab: Map<string, number>; merges: [string, string][] } {
  const byteChar = bytesToUnicode();
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const text of corpus)
    for (const piece of text.match(pretokenize) ?? []) {
      const mapped = [...encoder.encode(piece)].map((b) => byteChar[b]).join('');
      wordCounts.set(mapped, (wordCounts.get(mapped) ?? 0) + 1);
    }
  const words = [...wordCounts].map(([w, count]) => ({ symbols: [...w], count }));
  const vocab = new Map<string, number>();
  for (let b = 0; b < 256; b++) vocab.set(byteChar[b], b);
  const merges: [string, string][] = [];
  for (let m = 0; m < options.merges; m++) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words)
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of pairs) if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
      best = key;
      bestCount = count;
    }
    if (best === undefined) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    vocab.set(a + b, vocab.size);
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(word.symbols[i]);
      }
      word.symbols = out;
    }
  }
  return { vocab, merges };
}

/**
 * The `model` object of a Hugging Face `tokenizer.json` for a plain byte-level BPE: `vocab` token → id, `merges` in
 * rank order (pairs, or "left right" strings as older files write them).
 */
export function bpeModelJson(vocab: Readonly<Record<string, number>>, merges: readonly (readonly [string, string])[] | readonly string[]): Record<string, unknown> {
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: '',
    end_of_word_suffix: '',
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges: merges.map((m) => (typeof m === 'string' ? m : [m[0], m[1]])),
  };
}

/** A Hugging Face `tokenizer.json` object with Qwen2's normaliser, pre-tokeniser and decoder around the given BPE. */
export function byteBpeTokenizerJson(vocab: ReadonlyMap<string, number>, merges: readonly [string, string][], specialTokens: readonly string[]): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content, i) => specialTokenEntry(vocab.size + i, content)),
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Split', pattern: { Regex: qwenSplitRegex }, behavior: 'Isolated', invert: false }, byteLevel],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: bpeModelJson(Object.fromEntries(vocab), merges),
  };
}
