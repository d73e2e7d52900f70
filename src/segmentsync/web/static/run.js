// Run detail: poll the run's progress and update the page in place while it is active.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("live");
  if (!panel) return;
  // The bar's width is set here, not in a style attribute: the Content-Security-Policy allows none.
  const progress = panel.querySelector("[data-live-progress]");
  progress.querySelector(".bar").style.width = `${progress.getAttribute("aria-valuenow")}%`;
  if (panel.dataset.active !== "true") return;
  const url = panel.dataset.liveUrl;
  let shown = Number(progress.getAttribute("aria-valuenow")) || 0;
  const set = (name, value) => {
    for (const node of panel.querySelectorAll(`[data-live="${name}"]`)) node.textContent = value;
  };
  async function poll() {
    let data;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      data = await response.json();
    } catch (error) {
      window.setTimeout(poll, 3000); // the server may be restarting; keep trying, slower
      return;
    }
    // The bar never goes back within a run: a batch's platform progress is counted until its
    // checkpoint, and a poll may fall between the two.
    shown = Math.max(shown, Number(data.percent) || 0);
    data.percent = shown;
    for (const name of ["statusLabel", "phaseLabel", "percent", "batches", "rows", "rate", "eta"]) set(name, data[name]);
    const badge = panel.querySelector("[data-live-status]");
    badge.className = `badge status-${data.status}`;
    const bar = panel.querySelector("[data-live-progress]");
    bar.setAttribute("aria-valuenow", data.percent);
    bar.querySelector(".bar").style.width = `${data.percent}%`;
    for (const phase of data.phases || []) {
      const step = panel.querySelector(`[data-live-phases] [data-phase="${phase.name}"]`);
      if (!step) continue;
      step.className = `phase-${phase.state}`;
      if (phase.state === "current") step.setAttribute("aria-current", "step");
      else step.removeAttribute("aria-current");
    }
    const note = document.querySelector("[data-live-rows-note]");
    if (note) note.textContent = data.rowsNote;
    for (const [name, value] of Object.entries(data.counts)) {
      const node = panel.querySelector(`[data-live-count="${name}"]`);
      if (node) node.textContent = value;
    }
    // Cancelling: the note says what cannot be taken back, and Cancel is not offered again.
    panel.querySelector("[data-live-cancelling]").hidden = !data.cancelling;
    if (data.cancelling) for (const form of document.querySelectorAll("[data-live-cancel]")) form.hidden = true;
    const error = panel.querySelector('[data-live="error"]');
    error.hidden = !data.error;
    error.textContent = data.error || "";
    panel.dataset.status = data.status;
    if (data.active) {
      window.setTimeout(poll, 1000);
    } else {
      showFinished();
    }
  }
  // Finished: the per-row outcomes, the details and the chart come from the run's page, fetched
  // once and swapped in — no reload, so the focus and the scroll position stay where they were.
  async function showFinished() {
    let fresh;
    try {
      const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("main");
    } catch (error) {
      fresh = null;
    }
    const main = document.getElementById("main");
    if (!fresh || !main) {
      window.location.reload(); // the old way still shows the finished run
      return;
    }
    const active = document.activeElement && main.contains(document.activeElement) ? document.activeElement : null;
    const focused = active ? active.id : "";
    const typed = active && "value" in active ? active.value : null; // e.g. a row search being typed
    // The notices shown when the page was opened stay; the rest is the finished run's.
    for (const node of [...main.childNodes]) if (!(node.matches && node.matches(".notice"))) node.remove();
    for (const node of [...fresh.childNodes]) if (!(node.matches && node.matches(".notice"))) main.append(node);
    const bar = main.querySelector("[data-live-progress]");
    if (bar) bar.querySelector(".bar").style.width = `${bar.getAttribute("aria-valuenow")}%`;
    if (window.segmentsync) window.segmentsync.enhance(main);
    if (window.segmentsyncCharts) window.segmentsyncCharts(main);
    const again = focused && document.getElementById(focused);
    if (again) {
      if (typed !== null && "value" in again) again.value = typed;
      again.focus({ preventScroll: true });
    }
  }
  window.setTimeout(poll, 1000);
});
