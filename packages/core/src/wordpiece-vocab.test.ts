import { describe, expect, it } from 'vitest';
import { QuestionTokenizer } from './question-tokenizer.js';
import { basicTokens, buildWordPieceVocab } from './wordpiece-vocab.js';

describe('WordPiece vocabulary', () => {
  it('puts [PAD] at id 0 and splits punctuation as BERT does', () => {
    expect(basicTokens('What colour is the Square?')).toEqual(['what', 'colour', 'is', 'the', 'square', '?']);
    const vocab = buildWordPieceVocab(['red red blue?']);
    expect(vocab.slice(0, 6)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'red']);
  });

  it('orders words by frequency (ties alphabetically) and loads as a question tokenizer that knows every corpus word', () => {
    const corpus = ['What colour is the square?', 'What shape is the red object?'];
    const vocab = buildWordPieceVocab(corpus);
    expect(vocab.slice(5, 9)).toEqual(['?', 'is', 'the', 'what']);
    const tokenizer = QuestionTokenizer.fromVocabTxt(vocab.join('\n'), { maxLength: 16 });
    const unk = vocab.indexOf('[UNK]');
    for (const text of corpus) expect(tokenizer.encodeIds(text)).not.toContain(unk);
  });
});
