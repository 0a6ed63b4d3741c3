import { describe, expect, it } from 'vitest';
import { ChatTemplate } from './chat-template.js';
import { IGNORE_INDEX, VIDEO_TOKEN_INDEX } from './constants.js';
import { qwenTokenizer, vocabId } from './test-tokenizer.js';
import { chatExample, plainExample } from './training-examples.js';

const tok = qwenTokenizer();
const supervisedText = (ex: { inputIds: number[]; labels: number[] }) => tok.decode(ex.labels.filter((l) => l !== IGNORE_INDEX));

describe('training examples (spec §2 label masking)', () => {
  it('chat: only the assistant answers and their <|im_end|>\\n are supervised, over several turns', () => {
    const ex = chatExample(tok, new ChatTemplate(), [
      { role: 'user', content: '<video>\nWhat happens?' },
      { role: 'assistant', content: 'A dog runs.' },
      { role: 'user', content: 'Where?' },
      { role: 'assistant', content: 'In a park.' },
    ]);
    expect(ex.labels.length).toBe(ex.inputIds.length);
    expect(supervisedText(ex)).toBe('A dog runs.<|im_end|>\nIn a park.<|im_end|>\n');
    expect(ex.inputIds.filter((id) => id === VIDEO_TOKEN_INDEX).length).toBe(1);
    // The whole sequence is the rendered conversation.
    const rendered = new ChatTemplate().render([
      { role: 'user', content: '<video>\nWhat happens?' },
      { role: 'assistant', content: 'A dog runs.' },
      { role: 'user', content: 'Where?' },
      { role: 'assistant', content: 'In a park.' },
    ]);
    expect(tok.decode(ex.inputIds.filter((id) => id >= 0))).toBe(rendered.replace('<video>', ''));
    // The answer starts right after "<|im_start|>assistant\n", which is masked.
    const first = ex.labels.findIndex((l) => l !== IGNORE_INDEX);
    expect(ex.inputIds.slice(first - 3, first)).toEqual([151644, vocabId('assistant'), vocabId('Ċ')]);
    expect(ex.labels.slice(first - 3, first)).toEqual([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
  });

  it('plain: every text token is supervised, the placeholder is not', () => {
    const ex = plainExample(tok, '<video>\nDescribe.', 'A cat.');
    expect(ex.inputIds[0]).toBe(VIDEO_TOKEN_INDEX);
    expect(ex.labels[0]).toBe(IGNORE_INDEX);
    expect(ex.labels.slice(1)).toEqual(ex.inputIds.slice(1));
    expect(tok.decode(ex.inputIds.slice(1))).toBe('\nDescribe. A cat.');
  });

  it('a conversation without an answer is refused', () => {
    expect(() => chatExample(tok, new ChatTemplate(), [{ role: 'user', content: 'hi' }])).toThrow(/assistant turn/);
  });
});
