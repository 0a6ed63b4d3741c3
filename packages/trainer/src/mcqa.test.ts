import { describe, expect, it } from 'vitest';
import { extractMcqaAnswer, mcqaPrompt } from './mcqa.js';

// Spec §4.1: first letter, option-text fallback, unparseable → index 2 (reported separately as "unparsed").
describe('extractMcqaAnswer (mvbench_dump)', () => {
  const options = ['a blue square', 'a red circle', 'a green triangle', 'nothing'];
  const table: [string, number, string][] = [
    ['(B) a red circle', 1, 'letter'],
    ['B', 1, 'letter'],
    ['The answer is C.', 2, 'letter'], // "answer" is dropped, then the first capital in A–D is C
    ['Answer: (D)', 3, 'letter'],
    ['(A)', 0, 'letter'],
    ['It is D, the last one.', 3, 'letter'], // "It is" holds no capital in A–D
    ['A red circle', 0, 'letter'], // official quirk: the capital A of the article wins over the option text
    ['Based on the video, it is C', 1, 'letter'], // official quirk: the B of "Based"
    ['a red circle', 1, 'option-text'],
    ['I think it shows A GREEN TRIANGLE'.toLowerCase(), 2, 'option-text'],
    ['b', 2, 'unparsed'], // lower-case letters are not read as letters by the official regex
    ['there is nothing there', 3, 'option-text'],
    ['sorry, i cannot tell', 2, 'unparsed'],
    ['', 2, 'unparsed'],
  ];
  it.each(table)('%j → option %i via %s', (output, index, via) => {
    expect(extractMcqaAnswer('mvbench', output, options)).toEqual({ index, via });
  });

  it('letters beyond the option count are not letters (three options: "D" is not read)', () => {
    expect(extractMcqaAnswer('perception-test', 'D', ['x', 'y', 'z'])).toEqual({ index: 2, via: 'unparsed' });
    expect(extractMcqaAnswer('perception-test', 'the x', ['x', 'y', 'z'])).toEqual({ index: 2, via: 'unparsed' }); // no text fallback
    expect(extractMcqaAnswer('mvbench', 'garbage', ['x1', 'y1'])).toEqual({ index: -1, via: 'unparsed' });
  });

  it('egoschema reads the letter only; videomme also matches digits written as words', () => {
    expect(extractMcqaAnswer('egoschema', 'a red circle', options).via).toBe('unparsed');
    expect(extractMcqaAnswer('videomme', 'there are three people', ['1', '2', '3', '4'])).toEqual({ index: 2, via: 'option-text' });
    expect(extractMcqaAnswer('videomme', 'there are four people', ['1', '2', '3', '4'])).toEqual({ index: 3, via: 'option-text' });
  });
});

describe('mcqaPrompt (spec §4.1)', () => {
  const q = { question: 'What is shown?', options: ['a cat', 'a dog'] };
  it('mvbench', () => {
    expect(mcqaPrompt('mvbench', q)).toBe(
      'Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of objects, and the action and pose of persons. ' +
        'Based on your observations, select the best option that accurately addresses the question.\n' +
        "Question: What is shown?\nOptions:\n(A) a cat\n(B) a dog\nAnswer with the option's letter from the given choices directly and only give the best option.",
    );
  });
  it('egoschema and videomme end with "The best answer is: "', () => {
    expect(mcqaPrompt('egoschema', q)).toBe(
      'Select the best answer to the following multiple-choice question based on the video.\nWhat is shown?\nOptions:\n(A) a cat\n(B) a dog\n' +
        "Answer with the option's letter from the given choices directly and only give the best option. The best answer is: ",
    );
    expect(mcqaPrompt('videomme', q)).toBe(
      'Select the best answer to the following multiple-choice question based on the video. Respond with only the letter (A, B, C, or D) of the correct option.\n' +
        "What is shown?\nA. a cat\nB. a dog\nAnswer with the option's letter from the given choices directly and only give the best option. The best answer is: ",
    );
  });
  it('perception test and vnbench', () => {
    expect(mcqaPrompt('perception-test', q)).toBe(
      "Question: What is shown?\nOptions:\n(A) a cat\n(B) a dog\nAnswer with the option's letter from the given choices directly and only give the best option.",
    );
    expect(mcqaPrompt('vnbench', q)).toBe("What is shown?\n(A) a cat\n(B) a dog\nAnswer with the option's letter from the given choices directly");
  });
  it('rejects fewer than two options', () => {
    expect(() => mcqaPrompt('mvbench', { question: 'x', options: ['only'] })).toThrow(/2 to 26/);
  });
});
