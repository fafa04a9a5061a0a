// Types for the reference WASM binding, used by tests and the tokenize benchmark only.
declare module 'sentencepiece-js' {
  export class SentencePieceProcessor {
    /** Loads a .model file; failures are not reported (the binding drops the status). */
    load(path: string): Promise<void>;
    encodeIds(text: string): number[];
    encodePieces(text: string): string[];
    decodeIds(ids: number[]): string;
  }
}
