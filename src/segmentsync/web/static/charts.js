// Charts: draws every <canvas data-chart='{spec}'> with the vendored Chart.js (vendor/chart.umd.min.js).
// The spec comes from web/charts.py with its labels already translated; numbers and dates are
// formatted here in the page's language. The same numbers are in a table under each chart.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (!window.Chart) return;
  const lang = document.documentElement.lang || "en";
  const css = getComputedStyle(document.documentElement);
  const palette = {
    ok: "#2e9e62", warn: "#d49419", err: "#d0473b", accent: "#2456d3", sky: "#35a3e0", teal: "#1f8f8a",
    purple: "#7a55c7", orange: "#e07b28", sand: "#b9a27a", grey: "#98a2b3", ink: css.getPropertyValue("--ink").trim() || "#1d2330",
  };
  const colour = (name) => palette[name] || palette.grey;
  const when = new Intl.DateTimeFormat(lang, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const day = new Intl.DateTimeFormat(lang, { month: "short", day: "numeric", timeZone: "UTC" });
  const labelOf = (spec) => (text) => {
    if (spec.dates === "day") return day.format(new Date(`${text}T00:00:00Z`));
    if (spec.dates) return when.format(new Date(text));
    return text;
  };
  window.Chart.defaults.font.family = css.fontFamily;
  window.Chart.defaults.color = "#4b5567";

  function draw(canvas, spec) {
    const label = labelOf(spec);
    const datasets = spec.datasets.map((d) => {
      const colours = Array.isArray(d.color) ? d.color.map(colour) : colour(d.color);
      const line = (d.type || spec.kind) === "line";
      return {
        label: d.label, data: d.data, type: d.type, yAxisID: d.axis || "y",
        backgroundColor: colours, borderColor: line ? colours : (spec.kind === "doughnut" ? "#ffffff" : colours),
        borderWidth: line ? 2 : 1, pointRadius: line ? 2 : undefined, tension: 0, spanGaps: true, order: line ? 0 : 1,
      };
    });
    const scales = {};
    if (spec.kind !== "doughnut") {
      scales.x = { stacked: !!spec.stacked, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } };
      scales.y = { stacked: !!spec.stacked, beginAtZero: true, title: { display: !!spec.y, text: spec.y },
                   ticks: { precision: 0 } };
      if (spec.y2) {
        scales.y2 = { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                      title: { display: true, text: spec.y2 } };
      }
    }
    const chart = new window.Chart(canvas, {
      type: spec.kind,
      data: { labels: spec.labels.map(label), datasets },
      options: {
        locale: lang, animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: spec.kind === "doughnut" ? "nearest" : "index", intersect: spec.kind === "doughnut" },
        plugins: { legend: { position: spec.kind === "doughnut" ? "right" : "bottom", labels: { boxWidth: 12 } } },
        scales,
      },
    });
    canvas.dataset.drawn = "true";
    return chart;
  }

  function drawAll(root) {
    for (const canvas of root.querySelectorAll("canvas[data-chart]:not([data-drawn])")) {
      try {
        draw(canvas, JSON.parse(canvas.dataset.chart));
      } catch (error) {
        canvas.closest(".chart-box").hidden = true; // the table under it still has the numbers
      }
    }
  }
  drawAll(document);
  // For parts of the page swapped in later (run.js shows the finished run without reloading).
  window.segmentsyncCharts = drawAll;
});
