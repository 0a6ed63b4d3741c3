import { describe, expect, it } from 'vitest';
import { DatasetError } from './dataset-error.js';
import {
  IGNORE_INDEX,
  IMAGE_TOKEN_INDEX,
  VIDEO_TOKEN_INDEX,
  moveModalTokenToFront,
  preprocessChat,
  preprocessPlain,
  tokenizeWithPlaceholder,
  type ChatMessage,
  type ChatRenderer,
} from './preprocess.js';

/** One id per UTF-16 unit, so expected ids are the character codes of hand-written strings. */
const charTokenizer = { encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0)) };
const chars = (s: string) => charTokenizer.encode(s);
const masked = (s: string) => chars(s).map(() => IGNORE_INDEX);

/** The Qwen2-Instruct template written out by hand (default system turn when none is given; spec §1.2, D11). */
const SYSTEM = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n';
const qwenChat: ChatRenderer = {
  render(messages: readonly ChatMessage[], options = {}) {
    const body = messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('');
    return (messages[0].role === 'system' ? '' : SYSTEM) + body + (options.addGenerationPrompt ? '<|im_start|>assistant\n' : '');
  },
};

describe('tokenizeWithPlaceholder (tokenizer_multimodal_token)', () => {
  it('splits on the tag and puts one placeholder id there', () => {
    expect(tokenizeWithPlaceholder(charTokenizer, 'ab<video>cd', '<video>')).toEqual([97, 98, VIDEO_TOKEN_INDEX, 99, 100]);
    expect(tokenizeWithPlaceholder(charTokenizer, '<image>x', '<image>')).toEqual([IMAGE_TOKEN_INDEX, 120]);
    expect(tokenizeWithPlaceholder(charTokenizer, 'a<video>', undefined)).toEqual(chars('a<video>'));
  });
});

describe('moveModalTokenToFront (preprocess_multimodal)', () => {
  it('moves the tag to the start of its turn followed by a newline; the question is the turn without the tag', () => {
    const { turns, question } = moveModalTokenToFront(
      's1',
      [
        { from: 'human', value: 'What happens in this clip?\n<video>' },
        { from: 'gpt', value: 'A dog runs.' },
      ],
      '<video>',
    );
    expect(turns[0].value).toBe('<video>\nWhat happens in this clip?');
    expect(turns[1].value).toBe('A dog runs.');
    expect(question).toBe('What happens in this clip?');
  });

  it('leaves the bare tag when the turn has no other text', () => {
    const { turns, question } = moveModalTokenToFront('s', [{ from: 'human', value: ' <image> ' }], '<image>');
    expect(turns[0].value).toBe('<image>');
    expect(question).toBe('');
  });

  it('rejects a sample whose tag is missing or appears in two turns', () => {
    expect(() => moveModalTokenToFront('s9', [{ from: 'human', value: 'no tag' }], '<video>')).toThrow(DatasetError);
    expect(() =>
      moveModalTokenToFront(
        's9',
        [
          { from: 'human', value: '<video> a' },
          { from: 'gpt', value: 'b' },
          { from: 'human', value: '<video> c' },
        ],
        '<video>',
      ),
    ).toThrow(/exactly one turn, found it in 2/);
  });
});

describe('preprocessChat (stage 2, spec §2)', () => {
  it('masks everything up to and including the assistant header; supervises the reply and its <|im_end|>\\n', () => {
    const { inputIds, labels } = preprocessChat(
      'v1',
      [
        { from: 'human', value: '<video>\nWhat is shown?' },
        { from: 'gpt', value: 'A cat.' },
      ],
      charTokenizer,
      qwenChat,
      '<video>',
    );
    const prompt = [...chars(SYSTEM + '<|im_start|>user\n'), VIDEO_TOKEN_INDEX, ...chars('\nWhat is shown?<|im_end|>\n<|im_start|>assistant\n')];
    const reply = chars('A cat.<|im_end|>\n');
    expect(inputIds).toEqual([...prompt, ...reply]);
    expect(labels).toEqual([...prompt.map(() => IGNORE_INDEX), ...reply]);
  });

  it('multi-turn: every user turn and header masked, every reply supervised', () => {
    const { inputIds, labels } = preprocessChat(
      'v2',
      [
        { from: 'human', value: '<image>\nColour?' },
        { from: 'gpt', value: 'Red.' },
        { from: 'human', value: 'Shape?' },
        { from: 'gpt', value: 'Round.' },
      ],
      charTokenizer,
      qwenChat,
      '<image>',
    );
    const turn1 = [...chars(SYSTEM + '<|im_start|>user\n'), IMAGE_TOKEN_INDEX, ...chars('\nColour?<|im_end|>\n<|im_start|>assistant\n')];
    const reply1 = chars('Red.<|im_end|>\n');
    const turn2 = '<|im_start|>user\nShape?<|im_end|>\n<|im_start|>assistant\n';
    const reply2 = chars('Round.<|im_end|>\n');
    expect(inputIds).toEqual([...turn1, ...reply1, ...chars(turn2), ...reply2]);
    expect(labels).toEqual([...turn1.map(() => IGNORE_INDEX), ...reply1, ...masked(turn2), ...reply2]);
  });

  it('text-only: drops a leading gpt turn, as the official code does', () => {
    const { inputIds, labels } = preprocessChat(
      't1',
      [
        { from: 'gpt', value: 'Hello!' },
        { from: 'human', value: 'Hi' },
        { from: 'gpt', value: 'Yo' },
      ],
      charTokenizer,
      qwenChat,
    );
    const prompt = SYSTEM + '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';
    expect(inputIds).toEqual(chars(prompt + 'Yo<|im_end|>\n'));
    expect(labels).toEqual([...masked(prompt), ...chars('Yo<|im_end|>\n')]);
  });

  it('rejects an odd number of turns and turns out of order', () => {
    expect(() => preprocessChat('bad', [{ from: 'human', value: 'x' }], charTokenizer, qwenChat)).toThrow(/pairs/);
    expect(() =>
      preprocessChat(
        'bad',
        [
          { from: 'human', value: 'x' },
          { from: 'human', value: 'y' },
        ],
        charTokenizer,
        qwenChat,
      ),
    ).toThrow(/turn 1 is from human/);
  });
});

describe('preprocessPlain (stage 1, spec §2)', () => {
  it('joins the two turns with a space, no template; supervises all text and masks only the placeholder', () => {
    const { inputIds, labels } = preprocessPlain(
      'p1',
      [
        { from: 'human', value: '<video>\nDescribe.' },
        { from: 'gpt', value: 'A dog runs.' },
      ],
      charTokenizer,
      '<video>',
    );
    const text = chars('\nDescribe. A dog runs.');
    expect(inputIds).toEqual([VIDEO_TOKEN_INDEX, ...text]);
    expect(labels).toEqual([IGNORE_INDEX, ...text]);
  });

  it('rejects text-only samples and more than one pair', () => {
    expect(() => preprocessPlain('p2', [{ from: 'human', value: 'x' }, { from: 'gpt', value: 'y' }], charTokenizer, undefined)).toThrow(DatasetError);
    expect(() =>
      preprocessPlain(
        'p3',
        [
          { from: 'human', value: '<video> x' },
          { from: 'gpt', value: 'y' },
          { from: 'human', value: 'z' },
          { from: 'gpt', value: 'w' },
        ],
        charTokenizer,
        '<video>',
      ),
    ).toThrow(/2 turns, got 4/);
  });
});
