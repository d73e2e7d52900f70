// Writes the stylesheet of every CodeMirror theme the bundle defines (their rules are made when
// the bundle is evaluated), for the page to link: see style-mod-static.js.
import { readFileSync, writeFileSync } from "node:fs";
import vm from "node:vm";

const [bundle, out] = process.argv.slice(2);
const context = {};
vm.runInNewContext(readFileSync(bundle, "utf8"), context);
const rules = context.SegmentsyncCodeMirror.styleModules.map((module) => module.getRules());
const header = "@charset \"UTF-8\";\n/* CodeMirror 6 themes (MIT licence: codemirror-sql-LICENSE.md), written by scripts/sql-editor/build from the bundle's own rules. */\n";
writeFileSync(out, header + rules.join("\n") + "\n");
console.log(`${out}: ${rules.length} style modules`);
