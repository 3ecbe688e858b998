// Reference token ids for the tokenizer parity test, from the npm `tiktoken` package (OpenAI's
// tiktoken compiled to WebAssembly).
//
//   node reference.mjs ENCODING MODE INPUT OUTPUT
//
// INPUT holds one JSON string per line; OUTPUT gets, per input line, the ids separated by spaces.
// MODE is "ordinary" (encode_ordinary) or "special" (encode with every special token allowed).
import { get_encoding } from "tiktoken";
import { readFileSync, writeFileSync } from "node:fs";

const [encoding, mode, input, output] = process.argv.slice(2);
if (!output || (mode !== "ordinary" && mode !== "special")) {
  console.error("usage: node reference.mjs ENCODING ordinary|special INPUT OUTPUT");
  process.exit(2);
}
const enc = get_encoding(encoding);
const lines = readFileSync(input, "utf8").split("\n").filter((line) => line.length > 0);
const out = lines.map((line) => {
  const text = JSON.parse(line);
  const ids = mode === "ordinary" ? enc.encode_ordinary(text) : enc.encode(text, "all");
  return Array.from(ids).join(" ");
});
writeFileSync(output, out.join("\n") + "\n");
enc.free();
