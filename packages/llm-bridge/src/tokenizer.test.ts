import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qwenTokenizer, vocabId } from './test-tokenizer.js';
import { TokenizerError } from '@bvllm/core';
import { Qwen2Tokenizer } from './tokenizer.js';

// Byte-level BPE writes a leading space as "Ġ" and a newline as "Ċ" (GPT-2's byte-to-unicode table).
describe('Qwen2Tokenizer on the real Qwen vocabulary', () => {
  const tok = qwenTokenizer();

  it('encodes ASCII words to the ids the vocabulary JSON lists', () => {
    expect(tok.encode('Hello world')).toEqual([vocabId('Hello'), vocabId('Ġworld')]);
    expect(tok.encode('the\n')).toEqual([vocabId('the'), vocabId('Ċ')]);
  });

  it('maps special tokens written in text to their ids and adds no BOS', () => {
    expect(tok.encode('<|im_start|>')).toEqual([151644]);
    expect(tok.encode('<|im_end|><|endoftext|>')).toEqual([151645, 151643]);
  });

  it('reads EOS and pad from tokenizer_config.json', () => {
    // tokenizer_config.json: eos_token "<|im_end|>", pad_token "<|endoftext|>".
    expect(tok.eosTokenId).toBe(151645);
    expect(tok.padTokenId).toBe(151643);
    expect(tok.specialIds.has(151644)).toBe(true);
    expect(tok.specialIds.has(vocabId('Hello'))).toBe(false);
  });

  it('round-trips emoji and CJK text', () => {
    const text = 'Café 😀 你好, 🧑‍🚀 龘!\n';
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('skips special tokens on request', () => {
    const ids = tok.encode('<|im_start|>assistant\nHi<|im_end|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('assistant\nHi');
  });

  it('a folder without tokenizer.json is a TokenizerError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-'));
    expect(() => Qwen2Tokenizer.fromDir(dir)).toThrow(TokenizerError);
    writeFileSync(join(dir, 'tokenizer.json'), '{not json');
    expect(() => Qwen2Tokenizer.fromDir(dir)).toThrow(/cannot read as JSON/);
  });
});
