// Writes the licence note of the vendored bundle: every npm package esbuild put in it (from its
// metafile), with its version and its own licence text.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

const [metafile, out] = process.argv.slice(2);
const inputs = Object.keys(JSON.parse(readFileSync(metafile, "utf8")).inputs);
const names = [...new Set(inputs.map((path) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1]).filter(Boolean))].sort();
const parts = names.map((name) => {
  const dir = `node_modules/${name}`;
  const info = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
  const file = readdirSync(dir).find((entry) => /^licen[cs]e/i.test(entry));
  return `## ${name} ${info.version} (${info.license})\n\n${readFileSync(`${dir}/${file}`, "utf8").trim()}\n`;
});
const intro = "# codemirror-sql.min.js and codemirror-sql.css\n\n" +
  "CodeMirror 6 with its SQL language, bundled from npm by scripts/sql-editor/build. " +
  "It holds these packages, each under its own licence, below.\n\n";
writeFileSync(out, intro + parts.join("\n"));
console.log(`${out}: ${names.length} packages`);
