import { describe, expect, it } from 'vitest';
import { buildItem, itemSamples, SPLITS } from './build-item.js';
import { benchmarkCorpus } from './corpus.js';
import { parseSynthConfig } from './generate.js';
import { VIDEO_TAG } from './prompts.js';

const words = (text: string) => text.toLowerCase().split(/[^a-z0-9']+/).filter(Boolean);

describe('benchmarkCorpus', () => {
  // The `<video>` placeholder is a special token of the tokenizers, not corpus text.
  it('holds every word of every generated sample, for both prompt styles', () => {
    for (const mcqaPrompt of ['perception-test', 'mvbench'] as const) {
      const config = parseSynthConfig({ outDir: 'unused', mcqaPrompt, shapes: ['circle', 'square', 'triangle', 'cross', 'diamond'] });
      const vocabulary = new Set(benchmarkCorpus(config).flatMap(words));
      for (const split of SPLITS)
        for (let i = 0; i < 40; i++)
          for (const sample of itemSamples(buildItem(config, split, i), config))
            for (const turn of sample.conversations) for (const w of words(turn.value.replace(VIDEO_TAG, ''))) expect(vocabulary.has(w), w).toBe(true);
    }
  });

  it('stays small: a closed vocabulary of a few dozen words', () => {
    const config = parseSynthConfig({ outDir: 'unused' });
    const vocabulary = new Set(benchmarkCorpus(config).flatMap(words));
    expect(vocabulary.size).toBeLessThan(80);
    expect(vocabulary.has('diamond')).toBe(false);
  });
});
