// Bundles the action (dist/index.js) and the CLI (dist/cli.js) with esbuild.
// Output is deterministic so CI can fail when the committed dist/ is stale.
import { build } from 'esbuild';
import { rm, chmod } from 'node:fs/promises';

await rm('dist', { recursive: true, force: true });
await build({
  entryPoints: { index: 'src/main.ts', cli: 'src/cli.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
  // Some dependencies are CommonJS and call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __ociCreateRequire } from 'node:module';\nconst require = __ociCreateRequire(import.meta.url);" },
});
// The CLI runs as `oci-build` through package.json's bin.
const { readFile, writeFile } = await import('node:fs/promises');
const cli = await readFile('dist/cli.js', 'utf8');
await writeFile('dist/cli.js', `#!/usr/bin/env node\n${cli}`);
await chmod('dist/cli.js', 0o755);
