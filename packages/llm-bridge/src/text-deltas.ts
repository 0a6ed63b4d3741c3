/**
 * Turning generated ids into text deltas safely. A byte-level BPE piece can end in the middle of a UTF-8 character
 * (an emoji or a rare CJK character is often two or three pieces), and decoding it alone gives U+FFFD. The decoder
 * holds such pieces back until the character completes, and the stop matcher holds back any tail that could still
 * become a stop string, so no delta is ever taken back.
 */
import type { Qwen2Tokenizer } from './tokenizer.js';

const REPLACEMENT = '\uFFFD';

export class TextDeltaDecoder {
  private pending: number[] = [];

  constructor(
    private readonly tokenizer: Pick<Qwen2Tokenizer, 'decode'>,
    private readonly options: { skipSpecialTokens?: boolean } = { skipSpecialTokens: true },
  ) {}

  /** Adds one id; returns the text it completes ('' while a character is still open). */
  push(id: number): string {
    this.pending.push(id);
    const text = this.tokenizer.decode(this.pending, this.options);
    if (text.endsWith(REPLACEMENT)) return '';
    // Byte-level pieces decode independently once they end on a character boundary, so the buffer can restart.
    this.pending = [];
    return text;
  }

  /** Whatever is still held (a character the generation never completed decodes to U+FFFD). */
  flush(): string {
    const text = this.pending.length ? this.tokenizer.decode(this.pending, this.options) : '';
    this.pending = [];
    return text;
  }
}

export class StopStringMatcher {
  private held = '';
  private stopped = false;

  constructor(private readonly stopStrings: readonly string[]) {}

  get done(): boolean {
    return this.stopped;
  }

  /**
   * Adds decoded text; returns what can be emitted now. When a stop string appears, the text before it is
   * returned, the stop string and everything after it are dropped, and {@link done} becomes true.
   */
  push(text: string): string {
    if (this.stopped) return '';
    this.held += text;
    let cut = -1;
    for (const stop of this.stopStrings) {
      const at = this.held.indexOf(stop);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut !== -1) {
      this.stopped = true;
      const out = this.held.slice(0, cut);
      this.held = '';
      return out;
    }
    const keep = this.longestOpenPrefix();
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** The held tail, at the end of generation. */
  flush(): string {
    const out = this.stopped ? '' : this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest tail of `held` that is a proper prefix of some stop string. */
  private longestOpenPrefix(): number {
    let best = 0;
    for (const stop of this.stopStrings)
      for (let n = Math.min(stop.length - 1, this.held.length); n > best; n--)
        if (this.held.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
    return best;
  }
}
