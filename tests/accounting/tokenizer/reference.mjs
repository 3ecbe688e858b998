// Reference token ids for the tokenizer parity test (see reference_encoders.mjs for which package
// serves which tokenizer).
//
//   node reference.mjs TOKENIZER MODE INPUT OUTPUT
//
// INPUT holds one JSON string literal per line, whose bytes need not be UTF-8: the file is decoded
// with TextDecoder, which replaces each maximal ill-formed subpart by U+FFFD, as Tollgate does.
// OUTPUT gets, per input line, the ids separated by spaces. MODE is "ordinary" or "special".
import { readFileSync, writeFileSync } from "node:fs";
import { referenceEncoder } from "./reference_encoders.mjs";

const [tokenizer, mode, input, output] = process.argv.slice(2);
if (!output || (mode !== "ordinary" && mode !== "special")) {
  console.error("usage: node reference.mjs TOKENIZER ordinary|special INPUT OUTPUT");
  process.exit(2);
}
const encode = await referenceEncoder(tokenizer, mode);
const lines = new TextDecoder("utf-8")
  .decode(readFileSync(input))
  .split("\n")
  .filter((line) => line.length > 0);
const out = lines.map((line) => Array.from(encode(JSON.parse(line))).join(" "));
writeFileSync(output, out.join("\n") + "\n");
