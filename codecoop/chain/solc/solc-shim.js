#!/usr/bin/env node
// A solc command line for py-solc-x and slither on top of the npm `solc` package (solcjs, wasm).
// solcjs's own CLI prints a line about SMT solvers before its JSON, which breaks py-solc-x; this
// shim speaks just the two things they use: `--version` and `--standard-json` (stdin -> stdout),
// with imports resolved under --base-path, --include-path and the allowed paths.
"use strict";
const fs = require("fs");
const path = require("path");

const args = process.argv.slice(2);
const solcDir = process.env.CODECOOP_SOLC_MODULE;
const solc = require(solcDir || "solc");

if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("solc-shim: only --version and --standard-json are supported\n");
  process.exit(2);
}
const roots = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  if (["--base-path", "--include-path", "--allow-paths"].includes(args[i]) && args[i + 1]) {
    for (const p of args[i + 1].split(",")) roots.push(path.resolve(p));
    i++;
  }
}
function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
}
const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
