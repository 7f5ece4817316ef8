import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli, ROOT } from './helpers/cli.js';
import { imageView } from './helpers/image-tree.js';
import { buildahView } from './helpers/buildah-view.js';

/**
 * Issue 15: examples/habitat (eight phases, each a stage FROM the one before, run: steps as a
 * non-root user in its home) exported as a Dockerfile: the export puts USER and WORKDIR back after
 * each such step (read from the base's config), and buildah's build of it matches ours but for
 * the owner of a directory a COPY --chown creates.
 */

let reg: TestRegistry;
let ctx: string;
let base: string;
const env = () => ({ ...process.env, REGISTRY: reg.host, SOURCE_DATE_EPOCH: '1700000000' });

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'habitat-export/busybox')).single;
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-habitat-export-'));
  cpSync(resolve(ROOT, 'examples/habitat'), ctx, { recursive: true });
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('examples/habitat exported as a Dockerfile', () => {
  it('builds with buildah to the same files and config as ours', async () => {
    const built = await cli(
      [
        'build',
        '--config',
        join(ctx, 'oci-build.yml'),
        '--base',
        base,
        '--push',
        '--tag',
        'v1',
        '--provenance',
        'false',
        '--sbom',
        'false',
        '--cache-dir',
        join(ctx, '.cache'),
      ],
      { env: env() },
    );
    expect(built.code, built.stderr).toBe(0);
    const r = await cli(['dockerfile', '--config', join(ctx, 'oci-build.yml'), '--base', base, '-o', join(ctx, 'Dockerfile')], {
      env: env(),
    });
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(ctx, 'Dockerfile'), 'utf8');
    // The repos phase runs as dev in its home, then gives the next phase the base's user and directory back.
    expect(text).toMatch(/FROM tools AS repos\nUSER dev\nWORKDIR \/home\/dev\n# network: false.*\nRUN .*\nUSER root\nWORKDIR \/\n/);
    const theirs = await buildahView(ctx, 'Dockerfile', 'final', `${reg.host}/habitat-buildah:v1`);
    const ours = await imageView(`${reg.host}/habitat:v1`);
    // The one difference (README, "Dockerfile export"): a COPY --chown gives the directory it creates
    // (/home/dev/bin, for bin/setup.sh) that owner, where a build file's copy creates parents as root.
    expect(theirs.tree['/home/dev/bin']).toMatchObject({ type: 'dir', uid: 1100, gid: 1100 });
    expect(ours.tree['/home/dev/bin']).toMatchObject({ type: 'dir', uid: 0, gid: 0 });
    expect({ ...theirs.tree, '/home/dev/bin': ours.tree['/home/dev/bin'] }).toEqual(ours.tree);
    expect(theirs.config).toEqual(ours.config);
  });
});
