// The parts of CodeMirror 6 the segment page's SQL editor uses (src/segmentsync/web/static/sql-editor.js),
// bundled by esbuild into one file exposed as window.SegmentsyncCodeMirror. Rebuild: ./build (see README.md).
export { EditorState, Compartment } from "@codemirror/state";
export {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, drawSelection,
} from "@codemirror/view";
export { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
export { syntaxHighlighting, bracketMatching, indentOnInput } from "@codemirror/language";
export { classHighlighter } from "@lezer/highlight";
export { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
export {
  sql, StandardSQL, PostgreSQL, SQLite, MySQL, MariaSQL, MSSQL, PLSQL, Cassandra,
} from "@codemirror/lang-sql";
// The themes' rules, for make-css.js (and a test) to write and check the static stylesheet.
export { modules as styleModules } from "./style-mod-static.js";
