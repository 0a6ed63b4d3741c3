import { describe, expect, it } from 'vitest';
import { byteBpeTokenizerJson, bytesToUnicode, trainByteBpe } from './byte-bpe.js';
import { Qwen2Tokenizer } from './tokenizer.js';

describe('byte-level BPE training', () => {
  it('learns the most frequent pairs first, deterministically, and round-trips text through the HF tokenizer', () => {
    const corpus = ['aaab aaab', 'aaab'];
    const { merges } = trainByteBpe(corpus, { merges: 3, specialTokens: [] });
    // "aaab" ×3 and " aaab" ×1 (GPT-2 spaces are "Ġ"): (a,a) occurs 2×4 = 8 times, more than any other pair.
    expect(merges[0]).toEqual(['a', 'a']);
    expect(trainByteBpe(corpus, { merges: 3, specialTokens: [] }).merges).toEqual(merges);
    const { vocab, merges: learned } = trainByteBpe(['What colour is the square? red', 'ünïcödé 🫠'], { merges: 20, specialTokens: ['<|im_end|>'] });
    const tokenizer = Qwen2Tokenizer.fromJson(byteBpeTokenizerJson(vocab, learned, ['<|im_end|>']), { eos_token: '<|im_end|>' });
    for (const text of ['What colour is the square?', 'ünïcödé 🫠 <|im_end|>']) expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    expect(tokenizer.eosTokenId).toBe(vocab.size);
    expect(new Set(bytesToUnicode()).size).toBe(256);
  });
});
