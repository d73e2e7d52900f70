// The segment rule builder: groups (all of / any of, optionally negated) of conditions.
// It edits the JSON rule in the form's textarea (which is what the server reads); without
// JavaScript the textarea itself is the editor.
"use strict";

(() => {
  const el = (tag, attrs = {}, children = []) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  };

  function init() {
    const root = document.getElementById("rule-builder");
    const textarea = document.getElementById("f-rules");
    const configNode = document.getElementById("rule-config");
    if (!root || !textarea || !configNode) return;
    const config = JSON.parse(configNode.textContent);
    const words = config.words;
    const columns = config.columns;
    const columnNames = Object.keys(columns);
    const readOnly = root.closest("fieldset") && root.closest("fieldset").disabled;
    let rule;
    try {
      rule = JSON.parse(textarea.value || "{}");
    } catch (error) {
      rule = null;
    }
    if (!rule || !Array.isArray(rule.items)) rule = { op: "and", negate: false, items: [] };

    const typeOf = (column) => columns[column] || "other";
    const operatorsFor = (column) => config.operators[typeOf(column)] || ["is_empty", "is_not_empty"];
    const inList = (list, op) => list.includes(op);

    function defaultValue(column, operator) {
      if (inList(config.noValue, operator)) return null;
      if (inList(config.daysValue, operator)) return 30;
      if (inList(config.listValue, operator)) return [];
      if (operator === "between") return [null, null];
      return typeOf(column) === "boolean" ? true : null;
    }

    function newCondition() {
      const column = columnNames.find((name) => typeOf(name) === "string") || columnNames[0] || "";
      const operator = operatorsFor(column).includes("eq") ? "eq" : operatorsFor(column)[0];
      return { column, operator, value: defaultValue(column, operator) };
    }

    // A typed value from what an input holds (empty: null, so the server can say what is missing).
    function parse(type, text) {
      const raw = String(text).trim();
      if (type === "string") return String(text);
      if (raw === "") return null;
      if (type === "integer") return /^[+-]?\d+$/.test(raw) ? Number.parseInt(raw, 10) : raw;
      if (type === "float") return Number.isFinite(Number(raw)) ? Number(raw) : raw;
      if (type === "boolean") return raw === "true";
      return raw; // dates and times travel as ISO text
    }
    const show = (value) => (value === null || value === undefined ? "" : String(value));

    function inputFor(type, value, label, onchange) {
      if (type === "boolean") {
        const select = el("select", { class: "rb-value", "aria-label": label }, [
          el("option", { value: "true", text: words.yes }),
          el("option", { value: "false", text: words.no }),
        ]);
        select.value = value === false ? "false" : "true";
        select.addEventListener("change", () => onchange(select.value === "true"));
        return select;
      }
      const kinds = { integer: "number", float: "number", date: "date", timestamp: "datetime-local" };
      const input = el("input", { class: "rb-value", type: kinds[type] || "text", "aria-label": label });
      if (type === "integer") input.step = "1";
      if (type === "float") input.step = "any";
      if (type === "timestamp") input.step = "1";
      input.value = show(value);
      input.addEventListener("input", () => onchange(parse(type, input.value)));
      return input;
    }

    function valueEditor(cond, changed) {
      const type = typeOf(cond.column);
      const op = cond.operator;
      if (inList(config.noValue, op)) return [];
      if (inList(config.daysValue, op)) {
        const input = el("input", { class: "rb-value", type: "number", min: "0", step: "1", "aria-label": words.value });
        input.value = show(cond.value);
        input.addEventListener("input", () => { cond.value = parse("integer", input.value); changed(); });
        return [input, el("span", { text: words.days })];
      }
      if (inList(config.listValue, op)) {
        const input = el("input", { class: "rb-value", type: "text", "aria-label": words.value, placeholder: words.listHint });
        input.value = (Array.isArray(cond.value) ? cond.value : []).map(show).join(", ");
        input.addEventListener("input", () => {
          cond.value = input.value.split(",").map((part) => part.trim()).filter((part) => part !== "")
            .map((part) => parse(type, part));
          changed();
        });
        return [input];
      }
      if (op === "between") {
        if (!Array.isArray(cond.value) || cond.value.length !== 2) cond.value = [null, null];
        const low = inputFor(type, cond.value[0], words.value, (v) => { cond.value[0] = v; changed(); });
        const high = inputFor(type, cond.value[1], words.value, (v) => { cond.value[1] = v; changed(); });
        return [low, el("span", { text: words.and }), high];
      }
      return [inputFor(type, cond.value, words.value, (v) => { cond.value = v; changed(); })];
    }

    function conditionRow(cond, path, parent, index) {
      const row = el("div", { class: "rb-cond", "data-path": path });
      const column = el("select", { class: "rb-column", "aria-label": words.column });
      if (!columns[cond.column]) column.append(el("option", { value: cond.column, text: `${cond.column} (?)` }));
      for (const name of columnNames) {
        column.append(el("option", { value: name, text: `${name} · ${config.typeLabels[typeOf(name)] || ""}` }));
      }
      column.value = cond.column;
      column.addEventListener("change", () => {
        cond.column = column.value;
        if (!operatorsFor(cond.column).includes(cond.operator)) cond.operator = operatorsFor(cond.column)[0];
        cond.value = defaultValue(cond.column, cond.operator);
        if (typeOf(cond.column) !== "string") delete cond.ignore_case;
        render();
      });
      const operator = el("select", { class: "rb-operator", "aria-label": words.operator });
      for (const op of operatorsFor(cond.column)) operator.append(el("option", { value: op, text: config.operatorLabels[op] || op }));
      operator.value = cond.operator;
      operator.addEventListener("change", () => {
        const before = cond.operator;
        cond.operator = operator.value;
        const sameShape = (list) => inList(list, before) === inList(list, cond.operator);
        if (!(sameShape(config.noValue) && sameShape(config.listValue) && sameShape(config.daysValue)
              && (before === "between") === (cond.operator === "between"))) {
          cond.value = defaultValue(cond.column, cond.operator);
        }
        render();
      });
      row.append(column, operator, ...valueEditor(cond, sync));
      if (typeOf(cond.column) === "string" && !inList(config.noValue, cond.operator)) {
        const box = el("input", { type: "checkbox", class: "rb-ignore-case" });
        box.checked = Boolean(cond.ignore_case);
        box.addEventListener("change", () => { if (box.checked) cond.ignore_case = true; else delete cond.ignore_case; sync(); });
        row.append(el("label", { class: "check small" }, [box, words.ignoreCase]));
      }
      if (!readOnly) {
        row.append(el("button", { type: "button", class: "small rb-remove", text: "×", title: words.remove, "aria-label": words.remove,
          onclick: () => { parent.items.splice(index, 1); render(); } }));
      }
      return row;
    }

    function groupBox(group, path, parent, index) {
      if (!Array.isArray(group.items)) group.items = [];
      const box = el("div", { class: "rb-group", "data-path": path });
      const join = el("select", { class: "rb-join", "aria-label": words.all }, [
        el("option", { value: "and", text: words.all }),
        el("option", { value: "or", text: words.any }),
      ]);
      join.value = group.op === "or" ? "or" : "and";
      join.addEventListener("change", () => { group.op = join.value; sync(); });
      const negate = el("input", { type: "checkbox", class: "rb-negate" });
      negate.checked = Boolean(group.negate);
      negate.addEventListener("change", () => { group.negate = negate.checked; sync(); });
      const head = el("div", { class: "rb-head" }, [el("label", { class: "check small" }, [negate, words.not]), join]);
      if (parent && !readOnly) {
        head.append(el("button", { type: "button", class: "small rb-remove", text: words.remove,
          onclick: () => { parent.items.splice(index, 1); render(); } }));
      }
      const items = el("div", { class: "rb-items" });
      group.items.forEach((item, i) => {
        const itemPath = `${path}.items.${i}`;
        items.append(Array.isArray(item.items) ? groupBox(item, itemPath, group, i) : conditionRow(item, itemPath, group, i));
      });
      if (!group.items.length && !parent) items.append(el("p", { class: "rb-empty", text: words.everyone }));
      box.append(head, items);
      if (!readOnly) {
        box.append(el("div", { class: "rb-actions" }, [
          el("button", { type: "button", class: "small rb-add-condition", text: `+ ${words.addCondition}`,
            onclick: () => { group.items.push(newCondition()); render(); } }),
          el("button", { type: "button", class: "small rb-add-group", text: `+ ${words.addGroup}`,
            onclick: () => { group.items.push({ op: "or", negate: false, items: [newCondition()] }); render(); } }),
        ]));
      }
      return box;
    }

    function sync() {
      textarea.value = JSON.stringify(rule);
    }

    function markError() {
      const wanted = (root.dataset.errorPath || "").replace(/\[(\d+)\]/g, ".$1");
      if (!wanted) return;
      let best = null;
      for (const node of root.querySelectorAll("[data-path]")) {
        const path = node.dataset.path;
        if ((wanted === path || wanted.startsWith(`${path}.`)) && (!best || path.length > best.dataset.path.length)) best = node;
      }
      if (best && best !== root.firstChild) best.classList.add("rb-bad");
    }

    // Every change redraws the builder; the keyboard's focus is put back on the same control
    // (same condition or group, same kind), else on that group's "+ condition" button, so that
    // arrow keys in a select and Enter on a button keep working without a mouse.
    function ownControl(owner, kind) {
      return [...owner.querySelectorAll(`.${kind}`)].find((node) => node.closest("[data-path]") === owner);
    }
    function render() {
      const focused = root.contains(document.activeElement) ? document.activeElement : null;
      const owner = focused && focused.closest("[data-path]");
      const kind = focused && [...focused.classList].find((name) => name.startsWith("rb-"));
      const path = owner ? owner.dataset.path : null;
      root.replaceChildren(groupBox(rule, "rules", null, 0));
      sync();
      markError();
      if (!path) return;
      let again = root.querySelector(`[data-path="${path}"]`);
      let target = again && kind ? ownControl(again, kind) : null;
      for (let up = path; !target && up.includes(".items."); ) {
        up = up.slice(0, up.lastIndexOf(".items."));  // the condition is gone: its group's button
        again = root.querySelector(`[data-path="${up}"]`);
        target = again && ownControl(again, "rb-add-condition");
      }
      if (target) target.focus();
    }

    // "Edit as JSON" for those who prefer it; back to the builder re-reads the text.
    const toggle = el("button", { type: "button", class: "link small rb-json-toggle", text: words.json });
    const problem = el("p", { class: "error", hidden: "" });
    toggle.addEventListener("click", () => {
      if (!textarea.classList.contains("shown")) {
        textarea.value = JSON.stringify(rule, null, 2);
        textarea.classList.add("shown");
        root.hidden = true;
        toggle.textContent = words.builder;
        return;
      }
      try {
        const parsed = JSON.parse(textarea.value);
        rule = parsed && Array.isArray(parsed.items) ? parsed : { op: "and", negate: false, items: [] };
      } catch (error) {
        problem.textContent = words.badJson;
        problem.hidden = false;
        return;
      }
      problem.hidden = true;
      textarea.classList.remove("shown");
      root.hidden = false;
      toggle.textContent = words.json;
      render();
    });
    textarea.after(toggle, problem);
    render();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
