/**
 * `JSON.parse` keeps the last of two equal keys without a word, so a safetensors header (or a model config) can
 * say one thing to us and another to a tool that keeps the first. This scanner finds the first key repeated
 * inside one object, for callers that must refuse such files (issue #20 item 4).
 */

/**
 * The path to the first key that occurs twice in one object of `text`, e.g. `['model.norm.weight']` for a repeated
 * top-level key or `['a', 'dtype']` for a repeated field inside `a`; undefined when there is none. `text` must
 * already be valid JSON (run `JSON.parse` first): the scanner skips what is not a string or a bracket.
 */
export function findDuplicateKey(text: string): string[] | undefined {
  // One frame per open container; for an object, the keys seen so far and whether the next string is a key.
  const stack: ({ kind: 'object'; keys: Set<string>; expectKey: boolean; key?: string } | { kind: 'array' })[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const raw = text.slice(start + 1, i);
        // Keys compare decoded: "a" and "\u0061" are the same key to JSON.parse.
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : raw;
        if (top.keys.has(key)) return [...stack.flatMap((f) => (f.kind === 'object' && f !== top && f.key !== undefined ? [f.key] : [])), key];
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
    } else if (c === 0x7b /* { */) stack.push({ kind: 'object', keys: new Set(), expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ kind: 'array' });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
    }
  }
  return undefined;
}
