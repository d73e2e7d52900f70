// The SQL tab's editor: CodeMirror 6 (vendor/codemirror-sql.min.js, window.SegmentsyncCodeMirror)
// in place of the textarea, which stays in the form (hidden) and is kept up to date, so the form
// sends what is typed. Without JavaScript, or if the bundle did not load, the textarea is the editor.
//
// * Highlighting as you type: @codemirror/lang-sql in the profile source's dialect; tokens get
//   stable classes (tok-keyword, tok-string …, @lezer/highlight's classHighlighter) styled in app.css.
// * Checking as you type: 400 ms after typing stops, the query is posted to data-check-url, which
//   runs the check a save runs (sqlglot only: nothing is queried). A refusal is underlined at its
//   line and column, marked in the gutter, and said in words in the #sql-status live region.
// * Keyboard: Tab indents (CodeMirror's indentWithTab); Esc, then Tab, moves focus on, as
//   CodeMirror documents (https://codemirror.net/examples/tab/).
"use strict";

(() => {
  function init() {
    const CM = window.SegmentsyncCodeMirror;
    const textarea = document.getElementById("f-sql");
    const status = document.getElementById("sql-status");
    if (!CM || !textarea || !status) return;
    const form = textarea.form;
    const token = form && form.querySelector("input[name=csrf_token]");
    const readOnly = textarea.readOnly || Boolean(textarea.closest("fieldset:disabled"));
    // CodeMirror's themes come from vendor/codemirror-sql.css (the CSP refuses the <style> element
    // CodeMirror would add; see scripts/sql-editor/style-mod-static.js).
    let words = {};
    try {
      words = JSON.parse(textarea.dataset.words || "{}");
    } catch (_) {
      words = {};
    }
    const dialect = CM[textarea.dataset.dialect] || CM.StandardSQL;
    let pending = null;

    const say = (text, kind) => {
      status.textContent = text || "";
      status.className = "sql-status" + (kind ? ` sql-status-${kind}` : "");
    };

    // The span the check names: from its column to the end of the word there (at least 1 character).
    const span = (doc, line, column) => {
      const row = doc.line(Math.min(Math.max(1, line), doc.lines));
      const from = row.from + Math.min(Math.max(0, column - 1), row.length);
      const rest = doc.sliceString(from, row.to);
      const word = /^[\w$."]+|^\S/.exec(rest);
      return { from, to: word ? from + word[0].length : Math.min(from + 1, doc.length) };
    };

    async function check(view) {
      const text = view.state.doc.toString();
      if (pending) pending.abort();
      if (!text.trim()) {
        say("");
        return [];
      }
      const controller = new AbortController();
      pending = controller;
      let answer;
      try {
        const body = new URLSearchParams({ csrf_token: token ? token.value : "", sql: text });
        const response = await fetch(textarea.dataset.checkUrl, {
          method: "POST",
          body,
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          signal: controller.signal,
        });
        const type = response.headers.get("content-type") || "";
        if (!type.includes("application/json")) throw new Error(`HTTP ${response.status}`);
        answer = await response.json();
      } catch (error) {
        if (controller.signal.aborted) return [];
        say(words.failed || "", "failed");
        return [];
      }
      if (view.state.doc.toString() !== text) return []; // typed on meanwhile: the next check says
      if (answer.ok) {
        say(answer.message, "ok");
        return [];
      }
      say(answer.message, "error");
      if (!answer.line) return [];
      const { from, to } = span(view.state.doc, answer.line, answer.column || 1);
      return [{ from, to, severity: "error", message: answer.message }];
    }

    const labelled = document.getElementById("f-sql-label") ? { "aria-labelledby": "f-sql-label" } : {};
    const described = ["sql-status", readOnly ? "" : "sql-keys", ...(textarea.getAttribute("aria-describedby") || "").split(/\s+/)]
      .filter((id, index, all) => id && all.indexOf(id) === index && document.getElementById(id))
      .join(" ");
    const extensions = [
      CM.lineNumbers(),
      CM.highlightActiveLineGutter(),
      CM.highlightSpecialChars(),
      CM.history(),
      CM.drawSelection(),
      CM.indentOnInput(),
      CM.bracketMatching(),
      CM.syntaxHighlighting(CM.classHighlighter),
      CM.sql({ dialect }),
      CM.keymap.of([...CM.defaultKeymap, ...CM.historyKeymap, CM.indentWithTab]),
      CM.EditorView.lineWrapping,
      CM.EditorView.editorAttributes.of({ class: "sql-code" }), // CodeMirror keeps its element's classes
      CM.EditorView.contentAttributes.of({ ...labelled, "aria-describedby": described, "data-testid": "sql-editor" }),
      CM.EditorView.updateListener.of((update) => {
        if (update.docChanged) textarea.value = update.state.doc.toString();
      }),
    ];
    if (readOnly) {
      extensions.push(CM.EditorState.readOnly.of(true), CM.EditorView.editable.of(false));
    } else {
      extensions.push(CM.lintGutter(), CM.linter(check, { delay: 400 }));
    }
    const view = new CM.EditorView({ doc: textarea.value, extensions });
    textarea.before(view.dom);
    textarea.hidden = true;
    const served = textarea.parentNode.querySelector("[data-testid=sql-view]");
    if (served) served.hidden = true; // the server's highlighted copy: the editor shows the same
    const keys = document.getElementById("sql-keys");
    if (keys && !readOnly) keys.hidden = false;
    // The label names the textarea; a click on it goes to the editor instead.
    const label = document.getElementById("f-sql-label");
    if (label) label.addEventListener("click", (event) => {
      event.preventDefault();
      view.focus();
    });
    // What the form sends is the editor's text, even if a change has not been passed on yet.
    if (form) form.addEventListener("submit", () => {
      textarea.value = view.state.doc.toString();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
