import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { QUESTION_MAX_LENGTH, QuestionTokenizer, TokenizerError, wordPieceTokenizerJson } from './question-tokenizer.js';

// A small BERT-style vocabulary; ids are line numbers, as in bert-base-uncased's vocab.txt.
const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'what', 'is', 'the', 'man', 'doing', '?', 'play', '##ing', '##s', 'un', '##aff', '##able', '.', 'caf', '##e', ',', 'a'];
const id = (t: string) => vocab.indexOf(t);

describe('QuestionTokenizer (spec §1.1 "text", D14)', () => {
  const tokenizer = QuestionTokenizer.fromVocabTxt(vocab.join('\n') + '\n');
  let dir: string;

  beforeAll(async () => {
    await initBackend();
    dir = mkdtempSync(join(tmpdir(), 'qtok-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('wraps whole words in [CLS] … [SEP]', () => {
    // Lower-cased, split on whitespace and punctuation: what | is | the | man | doing | ?
    expect(tokenizer.encodeIds('What is the MAN doing?')).toEqual([2, 5, 6, 7, 8, 9, 10, 3]);
  });

  it('splits words greedily longest-first into ## pieces, strips accents, maps unknown words to [UNK]', () => {
    // playing → play ##ing; plays → play ##s; unaffable → un ##aff ##able; Café → cafe → caf ##e; xyz → [UNK]
    expect(tokenizer.tokenize('playing plays unaffable. Café xyz')).toEqual(['play', '##ing', 'play', '##s', 'un', '##aff', '##able', '.', 'caf', '##e', '[UNK]']);
    // "playz": play matches but "##z" does not exist, so the whole word is [UNK] (WordPiece does not emit partial words).
    expect(tokenizer.encodeIds('playz')).toEqual([id('[CLS]'), id('[UNK]'), id('[SEP]')]);
  });

  it('keeps special tokens typed into the question as text: only encodeIds adds [CLS] and [SEP] (issue #20 item 3)', () => {
    const ids = tokenizer.encodeIds('what [SEP] [CLS] [PAD] [MASK] [UNK]');
    const specials = ['[PAD]', '[CLS]', '[SEP]', '[MASK]'].map(id);
    expect(ids[0]).toBe(id('[CLS]'));
    expect(ids.at(-1)).toBe(id('[SEP]'));
    // Inside, each one is its brackets and an (unknown) word, never a special id.
    expect(ids.slice(1, -1).filter((i) => specials.includes(i))).toEqual([]);
    expect(ids.length).toBe(2 + 1 + 5 * 3);
  });

  it('truncates on the left, keeping [CLS] and [SEP] and the end of the question', () => {
    const short = QuestionTokenizer.fromVocabTxt(vocab.join('\n'), { maxLength: 5 });
    // pieces: what is the man doing ? (6) → room 3 → keep the last three: man doing ?
    expect(short.encodeIds('what is the man doing?')).toEqual([id('[CLS]'), id('man'), id('doing'), id('?'), id('[SEP]')]);
    expect(short.encodeIds('a man')).toEqual([id('[CLS]'), id('a'), id('man'), id('[SEP]')]);
    expect(tokenizer.maxLength).toBe(QUESTION_MAX_LENGTH);
    const long = tokenizer.encodeIds('a '.repeat(300) + 'what');
    expect(long.length).toBe(256);
    expect(long.slice(-2)).toEqual([id('what'), id('[SEP]')]);
  });

  it('encodes to int32 [1, Lt] tensors with an all-ones mask, without leaking', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const q = tokenizer.encode('what is a man?');
      expect(q.inputIds.dtype).toBe('int32');
      expect(q.inputIds.shape).toEqual([1, 7]);
      expect(Array.from(q.inputIds.dataSync())).toEqual([2, 5, 6, 21, 8, 10, 3]);
      expect(Array.from(q.attentionMask.dataSync())).toEqual([1, 1, 1, 1, 1, 1, 1]);
      tf.dispose([q.inputIds, q.attentionMask]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads a folder: tokenizer.json first, vocab.txt otherwise; cased vocab.txt when tokenizer_config says so', () => {
    writeFileSync(join(dir, 'vocab.txt'), [...vocab, 'Man'].join('\n'));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
    expect(QuestionTokenizer.fromDir(dir).encodeIds('Man')).toEqual([2, vocab.length, 3]);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(vocab)));
    expect(QuestionTokenizer.fromDir(dir).encodeIds('Man')).toEqual([2, id('man'), 3]);
  });

  it('fails with TokenizerError on a missing folder, a non-WordPiece model, or a vocabulary without [CLS]', () => {
    expect(() => QuestionTokenizer.fromDir(join(dir, 'nope'))).toThrow(TokenizerError);
    expect(() => QuestionTokenizer.fromTokenizerJson({ model: { type: 'BPE' } })).toThrow(TokenizerError);
    expect(() => QuestionTokenizer.fromVocabTxt('[UNK]\n[SEP]\nman')).toThrow(/\[CLS\]/);
  });
});
