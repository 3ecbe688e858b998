// The reference tokenizers, by Tollgate's tokenizer name: the npm packages the vocabularies come
// from. Shared by the parity test (reference.mjs) and the benchmark (bench/tokenizer).
//
//   const encode = await referenceEncoder("llama3", "ordinary");  // text => array of ids
//
// MODE "ordinary" treats the text of special tokens as ordinary text; "special" turns it into the
// special token. The SentencePiece packages (llama2, mistral) have no special-token parsing, so
// both modes are the same for them. No BOS or EOS is added; SentencePiece's dummy-prefix space is,
// as the models' tokenizers do.
export async function referenceEncoder(name, mode) {
  if (name === "cl100k_base" || name === "o200k_base") {
    const { get_encoding } = await import("tiktoken");
    const enc = get_encoding(name);
    return (text) => (mode === "ordinary" ? enc.encode_ordinary(text) : enc.encode(text, "all"));
  }
  if (name === "llama3") {
    const { default: llama3 } = await import("llama3-tokenizer-js");
    const never = /(?!)/g;  // a special-token pattern that matches nothing
    const options = mode === "ordinary" ? { bos: false, eos: false, specialTokenRegex: never }
                                        : { bos: false, eos: false };
    return (text) => llama3.encode(text, options);
  }
  if (name === "llama2") {
    const { default: llama2 } = await import("llama-tokenizer-js");
    return (text) => llama2.encode(text, false, true);
  }
  if (name === "mistral") {
    const { default: mistral } = await import("mistral-tokenizer-js");
    return (text) => mistral.encode(text, false, true);
  }
  throw new Error(`unknown tokenizer ${name}`);
}
