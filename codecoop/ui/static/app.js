// codecoop dashboard: sortable and filterable tables, copy buttons, charts, and live updates pushed by
// the server (server-sent events). No inline script anywhere (the Content-Security-Policy forbids it):
// chart data arrives as JSON in <script type="application/json"> blocks and is read with JSON.parse.
"use strict";

function cellValue(cell, numeric) {
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  const n = parseFloat(String(raw).replace(/[,%]/g, ""));
  return Number.isNaN(n) ? -Infinity : n;
}

function makeSortable(table) {
  const heads = table.tHead ? Array.from(table.tHead.rows[0].cells) : [];
  heads.forEach((th, index) => {
    th.tabIndex = 0;
    const sort = () => {
      const numeric = th.dataset.type === "num";
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows).filter((r) => r.cells.length === heads.length);
      rows.sort((a, b) => {
        const x = cellValue(a.cells[index], numeric);
        const y = cellValue(b.cells[index], numeric);
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach((r) => body.appendChild(r));
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  });
}

function applyFilter(input) {
  const table = document.getElementById(input.dataset.filterFor);
  if (!table) return;
  const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  Array.from(table.tBodies[0].rows).forEach((row) => {
    const text = row.textContent.toLowerCase();
    row.hidden = !words.every((w) => text.includes(w));
  });
}

function drawChart(canvas) {
  if (typeof Chart === "undefined") return;
  const source = document.getElementById(canvas.id + "-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const axes = (x, y) => ({
    x: { title: { display: true, text: x } },
    y: { title: { display: true, text: y }, beginAtZero: true },
  });
  let config;
  if (canvas.dataset.chart === "line") {
    config = {
      type: "line",
      data: { datasets: [{ label: canvas.dataset.legend, data: data.points, borderColor: "#2f6fb5", backgroundColor: "#2f6fb5", tension: 0.2 }] },
      options: { parsing: true, scales: { ...axes(canvas.dataset.x, canvas.dataset.y), x: { type: "linear", ticks: { stepSize: 1, precision: 0 }, title: { display: true, text: canvas.dataset.x } } } },
    };
  } else {
    config = {
      type: "bar",
      data: {
        labels: data.epochs,
        datasets: [
          { type: "bar", label: "granted", data: data.granted, backgroundColor: "#3aa17e" },
          { type: "line", label: "epoch cap", data: data.cap, borderColor: "#c0392b", backgroundColor: "#c0392b", pointRadius: 2 },
        ],
      },
      options: { scales: axes(canvas.dataset.x, canvas.dataset.y) },
    };
  }
  config.options.animation = false;
  config.options.maintainAspectRatio = false;
  config.options.plugins = { legend: { display: true, position: "bottom" } };
  if (canvas._chart) canvas._chart.destroy();
  canvas._chart = new Chart(canvas, config);
}

function init(root) {
  root.querySelectorAll("table.sortable").forEach(makeSortable);
  root.querySelectorAll("input.filter").forEach((input) => {
    input.addEventListener("input", () => applyFilter(input));
    applyFilter(input);
  });
  root.querySelectorAll("canvas[data-chart]").forEach(drawChart);
}

document.addEventListener("click", (e) => {
  const button = e.target.closest("button.copy");
  if (!button) return;
  const done = () => { button.classList.add("done"); setTimeout(() => button.classList.remove("done"), 900); };
  if (navigator.clipboard) navigator.clipboard.writeText(button.dataset.copy).then(done, done);
});

// Live: the server pushes each new block; the page fetches itself again and swaps its [data-live] regions,
// keeping what was typed into their filters.
let refreshing = false;
let pending = false;
async function refresh() {
  if (refreshing) { pending = true; return; }
  refreshing = true;
  try {
    const response = await fetch(window.location.href, { headers: { "Accept": "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    document.querySelectorAll("[data-live]").forEach((region) => {
      const next = fresh.getElementById(region.id);
      if (!next) return;
      const filters = {};
      region.querySelectorAll("input.filter").forEach((i) => { filters[i.dataset.filterFor] = i.value; });
      region.replaceChildren(...Array.from(next.childNodes).map((n) => document.importNode(n, true)));
      region.querySelectorAll("input.filter").forEach((i) => { i.value = filters[i.dataset.filterFor] || ""; });
      init(region);
    });
  } finally {
    refreshing = false;
    if (pending) { pending = false; refresh(); }
  }
}

function live() {
  const dot = document.getElementById("live-dot");
  const head = document.getElementById("head");
  const status = document.getElementById("demo-status");
  const source = new EventSource("/events");
  source.onopen = () => dot && dot.classList.add("on");
  source.onerror = () => dot && dot.classList.remove("on");
  source.onmessage = (e) => {
    const message = JSON.parse(e.data);
    if (status && message.status) status.textContent = "demo: " + message.status;
    if (message.type === "block") {
      if (head) head.textContent = String(message.head);
      if (dot) { dot.classList.add("flash"); setTimeout(() => dot.classList.remove("flash"), 300); }
      refresh();
    } else if (message.type === "audit") {
      const job = document.getElementById("audit-job");
      if (job && job.dataset.job === message.id && message.done) window.location.reload();
    }
  };
}

// An audit in progress: its stage and progress bar follow the server's job.
async function followAudit() {
  const job = document.getElementById("audit-job");
  if (!job || job.dataset.done === "yes") return;
  for (let i = 0; i < 3600; i += 1) {
    const response = await fetch("/audit/" + encodeURIComponent(job.dataset.job) + ".json");
    if (!response.ok) return;
    const state = await response.json();
    document.getElementById("audit-stage").textContent = state.stage + " (" + state.elapsed_s + " s)";
    document.getElementById("audit-progress").value = state.progress;
    if (state.done) { window.location.reload(); return; }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  init(document);
  live();
  followAudit();
});
window.addEventListener("load", () => document.querySelectorAll("canvas[data-chart]").forEach(drawChart));
