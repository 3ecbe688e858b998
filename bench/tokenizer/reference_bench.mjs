// The reference half of tollgate-tokenizer-bench: tokenizes the same documents with the npm
// `tiktoken` package (OpenAI's tiktoken as WebAssembly), single-threaded, and prints one line:
//   tokens=<n> seconds=<best of the rounds>
//
//   node reference_bench.mjs ENCODING INPUT ROUNDS
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const require = createRequire(here + "../../tests/accounting/tokenizer/package.json");
const { get_encoding } = require("tiktoken");

const [encoding, input, rounds] = process.argv.slice(2);
const docs = readFileSync(input, "utf8")
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => JSON.parse(line));
const enc = get_encoding(encoding);
let best = Infinity;
let tokens = 0;
for (let round = 0; round < Number(rounds); ++round) {
  tokens = 0;
  const start = process.hrtime.bigint();
  for (const doc of docs) tokens += enc.encode_ordinary(doc).length;
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(`tokens=${tokens} seconds=${best}`);
enc.free();
