// Reference token ids for the tokenizer parity test, from the npm packages the vocabularies come
// from: `tiktoken` (OpenAI's tiktoken compiled to WebAssembly) for cl100k_base and o200k_base,
// llama3-tokenizer-js, llama-tokenizer-js (Llama 2) and mistral-tokenizer-js.
//
//   node reference.mjs TOKENIZER MODE INPUT OUTPUT
//
// INPUT holds one JSON string literal per line, whose bytes need not be UTF-8: the file is decoded
// with TextDecoder, which replaces each maximal ill-formed subpart by U+FFFD, as Tollgate does.
// OUTPUT gets, per input line, the ids separated by spaces. MODE is "ordinary" (the text of special
// tokens is ordinary text) or "special" (it becomes the special token). The SentencePiece packages
// have no special-token parsing, so for llama2 and mistral both modes are the same. No BOS or EOS
// is added; SentencePiece's dummy-prefix space is, as the model's tokenizer does.
import { readFileSync, writeFileSync } from "node:fs";

const [tokenizer, mode, input, output] = process.argv.slice(2);
if (!output || (mode !== "ordinary" && mode !== "special")) {
  console.error("usage: node reference.mjs TOKENIZER ordinary|special INPUT OUTPUT");
  process.exit(2);
}

async function encoder(name) {
  if (name === "cl100k_base" || name === "o200k_base") {
    const { get_encoding } = await import("tiktoken");
    const enc = get_encoding(name);
    return (text) => (mode === "ordinary" ? enc.encode_ordinary(text) : enc.encode(text, "all"));
  }
  if (name === "llama3") {
    const { default: llama3 } = await import("llama3-tokenizer-js");
    const never = /(?!)/g;  // a special-token pattern that matches nothing
    return (text) =>
      llama3.encode(text, mode === "ordinary"
        ? { bos: false, eos: false, specialTokenRegex: never }
        : { bos: false, eos: false });
  }
  if (name === "llama2") {
    const { default: llama2 } = await import("llama-tokenizer-js");
    return (text) => llama2.encode(text, false, true);
  }
  if (name === "mistral") {
    const { default: mistral } = await import("mistral-tokenizer-js");
    return (text) => mistral.encode(text, false, true);
  }
  console.error(`unknown tokenizer ${name}`);
  process.exit(2);
}

const encode = await encoder(tokenizer);
const lines = new TextDecoder("utf-8")
  .decode(readFileSync(input))
  .split("\n")
  .filter((line) => line.length > 0);
const out = lines.map((line) => Array.from(encode(JSON.parse(line))).join(" "));
writeFileSync(output, out.join("\n") + "\n");
