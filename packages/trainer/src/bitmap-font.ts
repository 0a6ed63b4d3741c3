/**
 * A 5 × 7 pixel font with the glyphs a plot's labels need (digits, `.`, `-`, `+`, `e` for exponents, and the
 * letters of "loss" and "step"), so `loss.png` carries numbers and axis titles without a font or canvas dependency.
 */

/** Each glyph: 7 rows of 5 pixels, `#` set. */
const GLYPHS: Record<string, readonly string[]> = {
  '0': ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  '1': ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  '2': ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  '3': ['####.', '....#', '....#', '.###.', '....#', '....#', '####.'],
  '4': ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  '5': ['#####', '#....', '####.', '....#', '....#', '#...#', '.###.'],
  '6': ['.###.', '#....', '#....', '####.', '#...#', '#...#', '.###.'],
  '7': ['#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'],
  '8': ['.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'],
  '9': ['.###.', '#...#', '#...#', '.####', '....#', '....#', '.###.'],
  '.': ['.....', '.....', '.....', '.....', '.....', '.##..', '.##..'],
  '-': ['.....', '.....', '.....', '.###.', '.....', '.....', '.....'],
  '+': ['.....', '..#..', '..#..', '#####', '..#..', '..#..', '.....'],
  e: ['.....', '.....', '.###.', '#...#', '#####', '#....', '.###.'],
  l: ['.##..', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  o: ['.....', '.....', '.###.', '#...#', '#...#', '#...#', '.###.'],
  s: ['.....', '.....', '.####', '#....', '.###.', '....#', '####.'],
  t: ['..#..', '..#..', '#####', '..#..', '..#..', '..#..', '...##'],
  p: ['.....', '.....', '####.', '#...#', '####.', '#....', '#....'],
  ' ': ['.....', '.....', '.....', '.....', '.....', '.....', '.....'],
};

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
/** Pixels from one glyph's left edge to the next one's. */
export const GLYPH_ADVANCE = GLYPH_WIDTH + 1;

/** Width in pixels of `text` drawn by {@link drawText}. */
export function textWidth(text: string): number {
  return text.length === 0 ? 0 : text.length * GLYPH_ADVANCE - 1;
}

/** Calls `set(x, y)` for every pixel of `text` with its top-left corner at (`x`, `y`). Unknown characters throw. */
export function drawText(text: string, x: number, y: number, set: (x: number, y: number) => void): void {
  [...text].forEach((ch, i) => {
    const glyph = GLYPHS[ch];
    if (!glyph) throw new RangeError(`no glyph for ${JSON.stringify(ch)}`);
    glyph.forEach((row, dy) => {
      for (let dx = 0; dx < GLYPH_WIDTH; dx++) if (row[dx] === '#') set(x + i * GLYPH_ADVANCE + dx, y + dy);
    });
  });
}
