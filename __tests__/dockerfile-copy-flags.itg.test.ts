import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { cli } from './helpers/cli.js';
import { imageView } from './helpers/image-tree.js';

/**
 * COPY --parents and --exclude (BuildKit's Dockerfile frontend 1.7 labs, stable since), built,
 * pushed to a real registry and unpacked. buildah 1.28 has neither flag, so the expected trees
 * are BuildKit's documented results: --parents keeps each match's directories relative to the
 * context (or to a `/./` pivot in the source); --exclude leaves out paths matching its
 * .dockerignore-style patterns, relative to the source or to the context. With --from=stage the
 * same instructions read that stage's file system (its root in place of the context's) and must
 * give the same trees.
 */

let reg: TestRegistry;
const work = mkdtempSync(join(tmpdir(), 'oci-build-dfcopyflags-'));
const ctx = join(work, 'ctx');

beforeAll(async () => {
  reg = await startRegistry();
  const files: Record<string, string> = {
    'packages/a/package.json': '{"name":"a"}\n',
    'packages/a/index.js': 'a\n',
    'packages/b/package.json': '{"name":"b"}\n',
    'apps/web/package.json': '{"name":"web"}\n',
    'src/pkg/lib/x.go': 'package lib\n',
    'src/pkg/lib/x_test.go': 'package lib\n',
    'src/pkg/lib/README.md': 'readme\n',
    'src/pkg/doc/guide.md': 'guide\n',
    'home1.txt': '1\n',
    'home2.md': '2\n',
  };
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(ctx, p, '..'), { recursive: true });
    writeFileSync(join(ctx, p), c);
  }
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function tree(name: string, dockerfile: string): Promise<string[]> {
  writeFileSync(join(ctx, `${name}.Dockerfile`), dockerfile);
  const ref = `${reg.host}/copyflags/${name}:v1`;
  const r = await cli(['build', '-f', join(ctx, `${name}.Dockerfile`), '-t', ref, '--push', '--no-cache', ctx]);
  expect(r.code, r.stderr).toBe(0);
  const view = await imageView(ref);
  return Object.entries(view.tree).map(([p, n]) => `${p}${n.type === 'dir' ? '/' : ''}`);
}

describe('COPY --parents and --exclude', () => {
  it('--parents keeps the matched files under their directories', async () => {
    expect(await tree('parents', 'FROM scratch\nCOPY --parents packages/*/package.json apps/*/package.json /app/\n')).toEqual([
      '/app/',
      '/app/apps/',
      '/app/apps/web/',
      '/app/apps/web/package.json',
      '/app/packages/',
      '/app/packages/a/',
      '/app/packages/a/package.json',
      '/app/packages/b/',
      '/app/packages/b/package.json',
    ]);
  });

  it('--parents with a /./ pivot keeps only the part after it; a directory source keeps its contents', async () => {
    expect(await tree('pivot', 'FROM scratch\nCOPY --parents src/./pkg/lib /out/\n')).toEqual([
      '/out/',
      '/out/pkg/',
      '/out/pkg/lib/',
      '/out/pkg/lib/README.md',
      '/out/pkg/lib/x.go',
      '/out/pkg/lib/x_test.go',
    ]);
  });

  it('--exclude leaves out matching paths (several patterns, ** and globs; *.md only at the top, as .dockerignore)', async () => {
    expect(
      await tree(
        'exclude',
        'FROM scratch\nCOPY --exclude=**/*_test.go --exclude=*.md --exclude=pkg/doc src/ /src/\nCOPY --exclude=*.md home* /home/\n',
      ),
    ).toEqual(['/home/', '/home/home1.txt', '/src/', '/src/pkg/', '/src/pkg/lib/', '/src/pkg/lib/README.md', '/src/pkg/lib/x.go']);
  });
});

describe('COPY --parents and --exclude with --from=stage', () => {
  // BuildKit applies both flags in its copy operation whatever the source is (the context or a
  // stage), so the trees are those of the context's cases; buildah 1.28 has no --parents (nor
  // --exclude) to compare with, so these are BuildKit's documented results too.
  // The stage holds the context's files at its root, so each instruction has the context's result.
  const fromStage = (name: string, copy: string) => tree(name, `FROM scratch AS files\nCOPY . /\nFROM scratch\n${copy}\n`);

  it('--parents keeps the matched files under their directories in the stage', async () => {
    expect(await fromStage('from-parents', 'COPY --from=files --parents /packages/*/package.json apps/*/package.json /app/')).toEqual(
      await tree('ctx-parents', 'FROM scratch\nCOPY --parents packages/*/package.json apps/*/package.json /app/\n'),
    );
  });

  it('--parents with a /./ pivot in the stage path', async () => {
    expect(await fromStage('from-pivot', 'COPY --from=files --parents /src/./pkg/lib /out/')).toEqual([
      '/out/',
      '/out/pkg/',
      '/out/pkg/lib/',
      '/out/pkg/lib/README.md',
      '/out/pkg/lib/x.go',
      '/out/pkg/lib/x_test.go',
    ]);
  });

  it('--exclude leaves out matching stage paths, relative to the copied directory or to the root', async () => {
    expect(
      await fromStage(
        'from-exclude',
        'COPY --from=files --exclude=**/*_test.go --exclude=*.md --exclude=pkg/doc /src/ /src/\nCOPY --from=files --exclude=*.md /home* /home/',
      ),
    ).toEqual(['/home/', '/home/home1.txt', '/src/', '/src/pkg/', '/src/pkg/lib/', '/src/pkg/lib/README.md', '/src/pkg/lib/x.go']);
  });

  it('--parents and --exclude together, as with the context', async () => {
    const copy = '--parents --exclude=**/*_test.go --exclude=src/pkg/doc src/./pkg/* packages/a /out/';
    const fromStageTree = await fromStage('from-both', `COPY --from=files ${copy}`);
    expect(fromStageTree).toEqual([
      '/out/',
      '/out/packages/',
      '/out/packages/a/',
      '/out/packages/a/index.js',
      '/out/packages/a/package.json',
      '/out/pkg/',
      '/out/pkg/lib/',
      '/out/pkg/lib/README.md',
      '/out/pkg/lib/x.go',
    ]);
    expect(fromStageTree).toEqual(await tree('ctx-both', `FROM scratch\nCOPY ${copy}\n`));
  });
});
