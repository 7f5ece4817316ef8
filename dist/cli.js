#!/usr/bin/env node
import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);

// src/cli-entry.ts
var [major = 0] = process.versions.node.split(".").map(Number);
if (major < 22) {
  process.stderr.write(
    `oci-build: needs Node.js 22 or later, but ${process.execPath} is Node ${process.versions.node} (fix: run it with Node 22+, e.g. the action's node24, or put a newer node first in PATH)
`
  );
  process.exitCode = 2;
} else {
  process.getBuiltinModule?.("node:module")?.enableCompileCache?.();
  await import("./chunks/cli-MJ3IBN6J.js");
}
