// segmentsync — small page behaviours; every page works without them.
"use strict";
document.documentElement.classList.add("js");

// What the page's new parts need too (run.js swaps in the finished run's page without reloading).
function enhance(root) {
  // Forms that ask first (remove, cancel, revoke).
  for (const form of root.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // Times are rendered in UTC by the server; show them in the browser's time zone.
  const lang = document.documentElement.lang || "en";
  // Times set in a zone of their own (a schedule's) are shown in it by the server (data-tz).
  const format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  const zoneName = new Intl.DateTimeFormat(lang, { timeZoneName: "short" }).formatToParts(new Date())
    .find((part) => part.type === "timeZoneName");
  for (const node of root.querySelectorAll("time[datetime]:not([data-tz])")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      node.title = node.textContent.trim();
      node.textContent = zoneName ? `${format.format(moment)} ${zoneName.value}` : format.format(moment);
    }
  }
}
window.segmentsync = { enhance };

document.addEventListener("DOMContentLoaded", () => {
  // Forms that act at once when their select changes (the language switch).
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", () => form.submit());
  }
  // A wizard step named in the address (#step-6, after Connect): focus its control, as autofocus
  // would (browsers skip autofocus when the address names a place on the page).
  // A form shown again with problems: the first field with one takes the focus instead (every
  // problem is shown beside its field; this one is where to start).
  const problem = document.querySelector('p.error[id^="err-"]');
  const wrong = problem && document.querySelector(`[name="${problem.id.slice(4)}"]:not([type=hidden]):not([disabled])`);
  const step = window.location.hash.startsWith("#step-") && document.getElementById(window.location.hash.slice(1));
  const control = wrong || (step && (step.querySelector("[autofocus]") ||
    step.querySelector("button:not([disabled]), input:not([type=hidden]):not([disabled]), select, textarea")));
  // after the browser's own move to the named place, which would take the focus back
  if (control) window.requestAnimationFrame(() => { control.focus(); control.scrollIntoView({ block: "center" }); });
  enhance(document);
  // Radios that show a box only for one of their values (weekly → weekdays).
  for (const radio of document.querySelectorAll("input[data-toggles]")) {
    const box = document.getElementById(radio.dataset.toggles);
    const sync = () => {
      const chosen = document.querySelector(`input[name="${radio.name}"]:checked`);
      if (box && chosen) box.hidden = chosen.dataset.show !== "1";
    };
    radio.addEventListener("change", sync);
    sync();
  }
});
