// Extracts a vocabulary that an npm tokenizer package bakes into its JavaScript source, for
// scripts/fetch_vocab. The packages llama-tokenizer-js, llama3-tokenizer-js and
// mistral-tokenizer-js each hold two base64 string constants: the vocabulary (token strings in id
// order, joined by "\n") and the merges (pairs of vocabulary ids, in priority order; 16 bits per id
// for Llama 2 and Mistral, 17 bits for Llama 3). They are written out unchanged as
//   {"package": "<name>@<version>", "vocab_base64": "...", "merges_binary": "..."}
//
//   node scripts/extract_vocab.mjs PACKAGE_DIR SOURCE_FILE OUTPUT
import { readFileSync, writeFileSync } from "node:fs";

const [packageDir, sourceFile, output] = process.argv.slice(2);
if (!output) {
  console.error("usage: node extract_vocab.mjs PACKAGE_DIR SOURCE_FILE OUTPUT");
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(`${packageDir}/package.json`, "utf8"));
const source = readFileSync(`${packageDir}/${sourceFile}`, "utf8");

function constant(suffix) {
  const match = source.match(new RegExp(`^const (?:[a-z]+_)?${suffix} = "([A-Za-z0-9+/=]*)"`, "m"));
  if (!match) {
    console.error(`extract_vocab: ${sourceFile} of ${manifest.name} has no ${suffix} constant`);
    process.exit(1);
  }
  return match[1];
}

const vocab = {
  package: `${manifest.name}@${manifest.version}`,
  vocab_base64: constant("vocab_base64"),
  merges_binary: constant("merges_binary"),
};
writeFileSync(output, JSON.stringify(vocab) + "\n");
