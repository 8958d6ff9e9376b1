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


// Browser wallet (EIP-1193, window.ethereum): where the server holds no signer, forms that send a
// transaction (form.tx) are prepared by the server (checked by a dry run as the wallet's account),
// signed and sent by the wallet, and their receipt is read back by the server. Nothing secret passes
// through the page; every message is set as text, never as HTML.
const wallet = { account: null };

function say(ok, text) {
  const banner = document.getElementById("wallet-status");
  if (!banner) return;
  banner.textContent = text;
  banner.classList.remove("hidden", "ok", "error");
  banner.classList.add(ok ? "ok" : "error");
}

function walletUse(account) {
  wallet.account = account || null;
  const label = document.getElementById("wallet-account");
  const button = document.getElementById("wallet-connect");
  const badge = document.getElementById("read-only");
  if (label) label.textContent = account ? "wallet " + account : "";
  if (button) button.classList.toggle("hidden", Boolean(account));
  if (badge) badge.classList.toggle("hidden", Boolean(account));
  const note = document.getElementById("read-only-note");
  if (note) note.classList.toggle("hidden", Boolean(account));
  document.querySelectorAll("form.tx button").forEach((b) => { b.disabled = !account; });
}

async function walletConnect() {
  try {
    const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
    walletUse(accounts && accounts[0]);
  } catch (e) {
    say(false, "The wallet did not connect: " + (e && e.message ? e.message : String(e)));
  }
}

async function walletSubmit(form) {
  const body = new FormData(form);
  body.set("wallet", wallet.account);
  say(true, "Preparing the transaction…");
  const response = await fetch(form.action, { method: "POST", body, headers: { Accept: "application/json" } });
  const prepared = await response.json().catch(() => ({ ok: false, error: "the server answered " + response.status }));
  if (!prepared.ok) { say(false, prepared.error); return; }
  const tx = prepared.tx;
  const current = await window.ethereum.request({ method: "eth_chainId" });
  if (BigInt(current) !== BigInt(tx.chainId)) {
    try {
      await window.ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId: tx.chainId }] });
    } catch (e) {
      say(false, "Switch the wallet to chain id " + BigInt(tx.chainId).toString() + " (this federation's chain) and try again.");
      return;
    }
  }
  let hash;
  try {
    say(true, "Confirm in the wallet: " + prepared.what + "…");
    hash = await window.ethereum.request({ method: "eth_sendTransaction", params: [{ from: tx.from, to: tx.to, data: tx.data, value: tx.value }] });
  } catch (e) {
    say(false, "The wallet did not send the transaction: " + (e && e.message ? e.message : String(e)));
    return;
  }
  say(true, "Sent " + hash + "; waiting for it to be mined…");
  const sent = new FormData();
  sent.set("csrf", body.get("csrf"));
  sent.set("token", prepared.token);
  sent.set("hash", hash);
  const receipt = await fetch("/wallet/sent", { method: "POST", body: sent, headers: { Accept: "application/json" } });
  const done = await receipt.json().catch(() => ({ ok: false, error: "the server answered " + receipt.status }));
  if (!done.ok) { say(false, done.error); return; }
  window.location.assign(done.redirect);
}

async function walletInit() {
  const button = document.getElementById("wallet-connect");
  if (!button || !window.ethereum || document.body.dataset.signer === "server") return;
  button.classList.remove("hidden");
  button.addEventListener("click", walletConnect);
  document.addEventListener("submit", (e) => {
    const form = e.target.closest("form.tx");
    if (!form || !wallet.account) return;
    e.preventDefault();
    walletSubmit(form).catch((err) => say(false, "The transaction failed: " + (err && err.message ? err.message : String(err))));
  });
  if (typeof window.ethereum.on === "function") window.ethereum.on("accountsChanged", (accounts) => walletUse(accounts && accounts[0]));
  try {
    const accounts = await window.ethereum.request({ method: "eth_accounts" });  // connected before: no prompt
    if (accounts && accounts.length) walletUse(accounts[0]);
  } catch (e) { /* a wallet that refuses eth_accounts is connected with the button */ }
}

document.addEventListener("DOMContentLoaded", () => {
  init(document);
  live();
  followAudit();
  walletInit();
});
window.addEventListener("load", () => document.querySelectorAll("canvas[data-chart]").forEach(drawChart));
