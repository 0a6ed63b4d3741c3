/**
 * The LLM's text side: a Hugging Face `tokenizer.json` (byte-level BPE for Qwen2) run by `@huggingface/tokenizers`,
 * plus the special-token ids generation needs from `tokenizer_config.json`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenizerError } from '@bvllm/core';
import { Tokenizer } from '@huggingface/tokenizers';

/** The fields of `tokenizer_config.json` we read; the rest is passed to the library untouched. */
export interface TokenizerConfigJson {
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  chat_template?: string | null;
  model_max_length?: number;
  [key: string]: unknown;
}

const tokenText = (t: TokenizerConfigJson['eos_token']) => (typeof t === 'string' ? t : (t?.content ?? undefined));

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new TokenizerError(path, `cannot read as JSON (${(cause as Error).message})`, { cause });
  }
}

export class Qwen2Tokenizer {
  /** Id of the end-of-sequence token (`eos_token`, `<|im_end|>` for Qwen2-Instruct). */
  readonly eosTokenId: number;
  /** Id used to pad batches (`pad_token`, else the EOS, as the reference's `pad_token_id = eos`, spec §3). */
  readonly padTokenId: number;
  /** The Jinja chat template of `tokenizer_config.json`, if it has one. */
  readonly chatTemplate: string | undefined;
  /** Ids of every special added token (`<|im_start|>`, `<|endoftext|>`, …). */
  readonly specialIds: ReadonlySet<number>;
  /** The text of each special added token, to tell whether a text holds one. */
  private readonly specialContents: readonly string[];
  /** Built on the first text that holds a special token's text; see {@link encodeText}. */
  private plain: Tokenizer | undefined;

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly config: TokenizerConfigJson,
    source: string,
    private readonly tokenizerJson: Record<string, unknown>,
  ) {
    const idOf = (token: string | undefined, field: string) => {
      const id = token === undefined ? undefined : tokenizer.token_to_id(token);
      if (id === undefined) throw new TokenizerError(source, `${field} "${token}" is not in the vocabulary`);
      return id;
    };
    // Base Qwen2 checkpoints name `<|endoftext|>` as EOS; configs without one get that.
    this.eosTokenId = idOf(tokenText(config.eos_token) ?? '<|endoftext|>', 'eos_token');
    const pad = tokenText(config.pad_token);
    this.padTokenId = pad === undefined ? this.eosTokenId : idOf(pad, 'pad_token');
    this.chatTemplate = config.chat_template ?? undefined;
    const specials = [...tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special);
    this.specialIds = new Set(specials.map(([id]) => id));
    this.specialContents = specials.map(([, t]) => t.content);
  }

  /** Reads `tokenizer.json` and, when present, `tokenizer_config.json` from a model folder. */
  static fromDir(dir: string): Qwen2Tokenizer {
    const path = join(dir, 'tokenizer.json');
    if (!existsSync(path)) throw new TokenizerError(dir, 'no tokenizer.json');
    const configPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(configPath) ? (readJson(configPath) as TokenizerConfigJson) : {};
    return Qwen2Tokenizer.fromJson(readJson(path), config, dir);
  }

  static fromJson(tokenizerJson: Record<string, unknown>, config: TokenizerConfigJson = {}, source = 'tokenizer.json'): Qwen2Tokenizer {
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (cause) {
      throw new TokenizerError(source, `not a usable tokenizer (${(cause as Error).message})`, { cause });
    }
    return new Qwen2Tokenizer(tokenizer, config, source, tokenizerJson);
  }

  /**
   * Trusted text → ids: special tokens written in the text (`<|im_start|>`) become their ids. For what the chat
   * template writes, never for what a user or a system prompt wrote (use {@link encodeText}). Qwen2 adds no BOS.
   */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Untrusted text → ids with special-token parsing off (HF `split_special_tokens=True`): `<|im_start|>` typed by a
   * user is the ordinary pieces `<|`, `im`, `_start`, `|>`, so nobody can forge a turn or an end of text. Text
   * holding no special token's text encodes the same either way, so only such text pays for the second tokenizer.
   */
  encodeText(text: string): number[] {
    if (!this.specialContents.some((content) => text.includes(content))) return this.encode(text);
    this.plain ??= this.plainTokenizer();
    return this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  /** The same tokenizer without its special added tokens (non-special added tokens are ordinary words and stay). */
  private plainTokenizer(): Tokenizer {
    const added = (this.tokenizerJson.added_tokens ?? []) as { special?: boolean }[];
    return new Tokenizer({ ...this.tokenizerJson, added_tokens: added.filter((t) => !t.special) }, this.config);
  }

  /** Ids → text. Byte-level pieces that end mid-character decode to U+FFFD; see `streamText` for streaming. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** Vocabulary size including added tokens (may be below the model's padded `vocab_size`). */
  get vocabSize(): number {
    return this.tokenizer.get_vocab(true).size;
  }
}
