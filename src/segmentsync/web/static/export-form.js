// The export form: fields of the chosen platform, the list picker and field names (asked from the
// API with the session cookie), "Add attribute", the segments' member total and the schedule box.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.export-form");
  if (!form) return;
  const types = JSON.parse(form.dataset.connectionTypes || "{}");
  const limit = Number(form.dataset.limit || "0");
  const connection = form.querySelector("#f-connection_id");
  const listInput = form.querySelector("#f-list_id");
  const pickBox = form.querySelector("#list-pick");
  const picker = form.querySelector("#list-picker");
  const targets = form.querySelector("#targets");
  const heading = form.querySelector("[data-list-heading]");
  const number = new Intl.NumberFormat(document.documentElement.lang || "en");
  const BASE_TARGETS = { campaign_monitor: ["Name"], constant_contact: ["first_name", "last_name"] };
  let type = null;

  const api = async (path) => {
    const response = await fetch(`/api/v1${path}`, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || String(response.status));
    return body;
  };

  function setTargets(extra) {
    targets.replaceChildren();
    for (const value of [...(BASE_TARGETS[type] || []), ...extra]) {
      const option = document.createElement("option");
      option.value = value;
      targets.append(option);
    }
  }

  async function loadFields() {
    const id = connection && connection.value;
    const list = listInput.value.trim();
    if (!id || !list) return setTargets([]);
    try {
      const page = await api(`/connections/${id}/lists/${encodeURIComponent(list)}/custom-fields?limit=500`);
      setTargets(page.items.map((field) => (type === "constant_contact" ? `cf:${field.name}` : field.key)));
    } catch (error) {
      setTargets([]); // an unknown list: the save says why, beside the field
    }
  }

  async function loadLists() {
    const id = connection && connection.value;
    pickBox.hidden = !id;
    if (!id) return;
    picker.replaceChildren(new Option(picker.dataset.loading, ""));
    try {
      const page = await api(`/connections/${id}/lists?limit=500`);
      picker.replaceChildren(new Option(picker.dataset.choose, ""));
      for (const item of page.items) {
        const count = item.member_count === null || item.member_count === undefined ? "" : ` (${number.format(item.member_count)} ${picker.dataset.members})`;
        const option = new Option(`${item.name}${count}`, item.list_id);
        if (count) option.dataset.counted = "1";
        option.selected = item.list_id === listInput.value.trim();
        picker.append(option);
      }
      countMembers(id);
    } catch (error) {
      picker.replaceChildren(new Option(`${picker.dataset.failed} ${error.message}`, ""));
    }
  }

  // Campaign Monitor's list of lists has no member counts: ask for each list's, two at a time.
  async function countMembers(id) {
    const waiting = [...picker.options].filter((option) => option.value && !option.dataset.counted);
    const next = async () => {
      const option = waiting.shift();
      if (!option || connection.value !== id) return;
      try {
        const list = await api(`/connections/${id}/lists/${encodeURIComponent(option.value)}`);
        if (list.member_count !== null && list.member_count !== undefined) {
          option.text = `${option.text} (${number.format(list.member_count)} ${picker.dataset.members})`;
        }
      } catch (error) { /* the count is a nicety: the list can still be picked */ }
      option.dataset.counted = "1";
      await next();
    };
    await Promise.all([next(), next()]);
  }

  function showPlatform() {
    type = connection && connection.value ? types[connection.value] || null : null;
    // A platform's own fields only once its connection is picked ("" marks what shows before).
    for (const node of form.querySelectorAll("[data-only]")) node.hidden = node.dataset.only !== (type || "");
    if (heading) heading.textContent = type === "campaign_monitor" ? heading.dataset.cm : type === "constant_contact" ? heading.dataset.cc : heading.textContent;
  }

  if (connection) {
    connection.addEventListener("change", () => { showPlatform(); loadLists(); loadFields(); });
    showPlatform();
    if (connection.value) { loadLists(); loadFields(); }
  }
  picker.addEventListener("change", () => {
    if (picker.value) { listInput.value = picker.value; loadFields(); }
  });
  listInput.addEventListener("change", loadFields);

  // Attributes: add a row, remove a row (the last one is only cleared).
  const box = form.querySelector("#attributes");
  box.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-attr]");
    if (!button) return;
    const rows = box.querySelectorAll(".attr");
    const row = button.closest(".attr");
    if (rows.length > 1) row.remove();
    else for (const field of row.querySelectorAll("select, input")) field.value = "";
  });
  form.querySelector("#add-attribute").addEventListener("click", () => {
    const rows = box.querySelectorAll(".attr");
    const last = rows[rows.length - 1];
    const empty = [...last.querySelectorAll("select, input")].every((field) => !field.value);
    if (empty) { last.querySelector("select").focus(); return; }
    const copy = last.cloneNode(true);
    for (const field of copy.querySelectorAll("select, input")) field.value = "";
    last.after(copy);
    copy.querySelector("select").focus();
  });

  // The selected segments' member total, and the warning over the export limit.
  const total = form.querySelector("#segment-total");
  const warning = form.querySelector("#limit-warning");
  function sum() {
    if (!total) return;
    let members = 0;
    for (const box of form.querySelectorAll('input[name="segment_ids"]:checked')) members += Number(box.dataset.members || "0");
    total.textContent = total.dataset.template.replace("{count}", number.format(members));
    warning.hidden = !(limit && members > limit);
    warning.textContent = warning.dataset.template.replace("{count}", number.format(members));
  }
  form.addEventListener("change", (event) => { if (event.target.name === "segment_ids") sum(); });
  sum();

  // The cron fields only for a custom recurrence.
  const cronBox = form.querySelector("#cron-box");
  function schedule() {
    const chosen = form.querySelector('input[name="schedule_mode"]:checked');
    cronBox.hidden = !chosen || chosen.value !== "cron";
  }
  form.addEventListener("change", (event) => { if (event.target.name === "schedule_mode") schedule(); });
  schedule();
});
