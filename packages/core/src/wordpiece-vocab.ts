/**
 * Builds a BERT `vocab.txt` (uncased, whole words and punctuation) from a corpus, for a small model's (the
 * default model's) question tokenizer. A closed synthetic vocabulary needs no sub-word pieces; unseen words map to [UNK].
 */
export const bertSpecialTokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** BERT's basic tokenisation: lower-case, split on whitespace, and isolate each punctuation character. */
export function basicTokens(text: string): string[] {
  return text
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '')
    .split(/\s+/)
    .flatMap((w) => w.split(/([\p{P}\p{S}])/u))
    .filter((t) => t.length > 0);
}

/** `[PAD]` first (id 0, the Q-Former's pad id), then the other specials, then tokens by descending frequency. */
export function buildWordPieceVocab(corpus: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const text of corpus) for (const t of basicTokens(text)) counts.set(t, (counts.get(t) ?? 0) + 1);
  const words = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
  return [...bertSpecialTokens, ...words.filter((w) => !(bertSpecialTokens as readonly string[]).includes(w))];
}
