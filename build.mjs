// Bundles the action (dist/index.js) and the CLI (dist/cli.js) with esbuild.
// Output is deterministic so CI can fail when the committed dist/ is stale. Files are replaced
// atomically (write + rename) and stale chunks removed afterwards, so a test run reading dist/
// while another build runs never sees a missing or half-written file.
import { build } from 'esbuild';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

const result = await build({
  entryPoints: { index: 'src/main.ts', cli: 'src/cli-entry.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  chunkNames: 'chunks/[name]-[hash]',
  // The CycloneDX library's optional XML plug-ins, loaded in a try when present; we write JSON only.
  external: ['xmlbuilder2', 'libxmljs2'],
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
  // Some dependencies are CommonJS and call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __ociCreateRequire } from 'node:module';\nconst require = __ociCreateRequire(import.meta.url);",
  },
});

const keep = new Set();
for (const file of result.outputFiles) {
  const rel = relative(resolve('dist'), file.path);
  keep.add(rel);
  // The CLI runs as `oci-build` through package.json's bin.
  const isCli = rel === 'cli.js';
  const contents = isCli ? Buffer.concat([Buffer.from('#!/usr/bin/env node\n'), Buffer.from(file.contents)]) : file.contents;
  await mkdir(dirname(file.path), { recursive: true });
  const tmp = `${file.path}.${process.pid}.tmp`;
  await writeFile(tmp, contents, { mode: isCli ? 0o755 : 0o644 });
  await rename(tmp, file.path);
}

async function prune(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await prune(p);
    else if (!keep.has(relative(resolve('dist'), resolve(p))) && !e.name.endsWith('.tmp')) await rm(p, { force: true });
  }
}
await prune('dist');
