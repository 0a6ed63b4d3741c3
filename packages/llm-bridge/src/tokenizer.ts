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

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly config: TokenizerConfigJson,
    source: string,
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
    this.specialIds = new Set([...tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
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
    return new Qwen2Tokenizer(tokenizer, config, source);
  }

  /** Text → ids. Special tokens written in the text (`<|im_start|>`) become their ids; Qwen2 adds no BOS. */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
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
