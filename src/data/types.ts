/** The roles a chat template knows; readers map every input format onto these. */
export type Role = 'system' | 'user' | 'assistant';

export interface Message {
  role: Role;
  content: string;
}

/**
 * One training item in one language. `id` is shared by the translations of the same
 * item across languages, which is what mixtures and splits are keyed on.
 */
export interface Conversation {
  id: string;
  lang: string;
  messages: Message[];
}

/**
 * What the data layer needs from a tokenizer: SentencePiece semantics, i.e. `encode`
 * adds no BOS/EOS and prepends the dummy "▁" prefix on every call unless
 * `addDummyPrefix` is false.
 */
export interface TextTokenizer {
  encode(text: string): number[];
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
  /** What pieceToId answers for a piece it does not know, if it answers rather than returning undefined. */
  readonly unkId?: number;
  /** Looked up for special-token strings found in Jinja-rendered text; -1 or undefined when absent. */
  pieceToId?(piece: string): number | undefined;
  readonly addDummyPrefix?: boolean;
}
