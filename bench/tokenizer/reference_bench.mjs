// The reference half of tollgate-tokenizer-bench: tokenizes the same documents with the reference
// package of TOKENIZER (tests/accounting/tokenizer/reference_encoders.mjs; for cl100k_base and
// o200k_base the npm `tiktoken` package, OpenAI's tiktoken as WebAssembly), single-threaded, and
// prints one line:
//   tokens=<n> seconds=<best of the rounds>
//
//   node reference_bench.mjs TOKENIZER INPUT ROUNDS
import { readFileSync } from "node:fs";
import { referenceEncoder } from "../../tests/accounting/tokenizer/reference_encoders.mjs";

const [tokenizer, input, rounds] = process.argv.slice(2);
const docs = new TextDecoder("utf-8")
  .decode(readFileSync(input))
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => JSON.parse(line));
const encode = await referenceEncoder(tokenizer, "ordinary");
let best = Infinity;
let tokens = 0;
for (let round = 0; round < Number(rounds); ++round) {
  tokens = 0;
  const start = process.hrtime.bigint();
  for (const doc of docs) tokens += encode(doc).length;
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(`tokens=${tokens} seconds=${best}`);
