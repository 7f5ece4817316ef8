// S1's floor (issue 16) and S1b, S1 on a second fixture.
//
// The floor is the least this machine can do for the work of S1's cold build: the bytes the
// variants add, as tar layers, compressed at our gzip level on all cores (pigz -p nproc) with
// both digests a build needs (sha256 of the uncompressed tar, the diff ID, and of the gzip
// blob), and those blobs uploaded to the same registry (through the same counting proxy) by
// curl with the monolithic upload: POST /v2/<repo>/blobs/uploads/, then PUT <location>&digest=.
// Each blob's upload starts as soon as it is compressed, overlapping the next layer. Not in it:
// the config and manifest (a few KiB), reading the base image, anything a real build decides.
import { availableParallelism } from 'node:os';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeS1bContext, S1B_LAYERS, S1B_VARIANTS } from './fixtures-more.mjs';
import { measured } from './util.mjs';

/** The layers S1's variants add: [name, paths in the context]. */
export const S1_LAYERS = [
  ['app', ['bin/app']],
  ['scenarios', ['scenarios']],
  ['tool', ['bin/tool']],
];

const FLOOR_SCRIPT = fileURLToPath(new URL('./floor.sh', import.meta.url));

/** One run of the floor for `layers` of `ctx`, into the registry repository bench/floor-<runId>. */
export async function floorRun(h, ctx, layers, runId, logFile) {
  const out = join(h.BENCH, 'out', 'floor');
  return await h.withRegistryStats(async () => {
    const r = await measured(
      'bash',
      [
        FLOOR_SCRIPT,
        ctx,
        out,
        `http://${h.reg.host}/v2/bench/floor-${runId}`,
        String(availableParallelism()),
        String(h.GZIP_LEVEL),
        ...layers.map(([name, paths]) => `${name}=${paths.join(',')}`),
      ],
      { log: logFile },
    );
    const outputBytes = readdirSync(out)
      .filter((f) => f.endsWith('.blob'))
      .reduce((a, f) => a + statSync(join(out, f)).size, 0);
    rmSync(out, { recursive: true, force: true });
    return { ms: r.ms, rssKiB: r.rssKiB, outputBytes };
  });
}

export function floorNote(layers) {
  return `floor: ${layers.map(([n, p]) => `${n} (${p.join(', ')})`).join(', ')} as tar | tee >(sha256sum) | pigz -p ${availableParallelism()} -LEVEL | tee >(sha256sum), then curl POST /blobs/uploads/ + PUT ?digest= to the same registry (through the counting proxy), each upload overlapping the next layer; no config or manifest`;
}

/** ours / floor into the scenario's results (target: <= 1.3). */
export function floorRatio(res) {
  res.oursOverFloor = res.tools.ours.median.ms / res.tools.floor.median.ms;
}

/** S1b: S1's cold build on a second fixture (a real Go program, base64 text files). */
export async function s1b(h) {
  const fx = await makeS1bContext(h.BENCH);
  const mib = (fx.server.bytes / 1048576).toFixed(1);
  h.record(
    'S1B',
    `cold, second fixture: server = base + ${mib} MiB program (${fx.server.kind}); data = from server + ${fx.files} base64 text files of ${fx.fileBytes / 1000} KB (owner 1000:1000) + env`,
    [
      'as S1: a fresh registry per round holding only the base, new repositories, a new --cache-dir, buildah rm -a; rmi -af; caches dropped and inputs read back in before each run',
      `buildah time = ${S1B_VARIANTS.length} x bud (--target per variant, --layers) + ${S1B_VARIANTS.length} x push`,
      floorNote(S1B_LAYERS),
    ],
  );
  h.results.S1B.fixture = { server: fx.server, files: fx.files, fileBytes: fx.fileBytes };
  await h.alternate(
    'S1B',
    {
      ours: async (i, r) => {
        await h.settle(fx.ctx);
        return h.ours(fx.ctx, r.runId, r.cacheDir, join(h.LOGS, `S1B-ours-${i}.log`));
      },
      buildah: async (i, r) => {
        await h.buildahClean();
        await h.settle(fx.ctx);
        return h.buildah(fx.ctx, r.runId, join(h.LOGS, `S1B-buildah-${i}.log`), { images: S1B_VARIANTS });
      },
      floor: async (i, r) => {
        await h.settle(fx.ctx);
        return floorRun(h, fx.ctx, S1B_LAYERS, r.runId, join(h.LOGS, `S1B-floor-${i}.log`));
      },
    },
    async (i) => {
      if (i > 0) rmSync(join(h.BENCH, 'cache', `s1b-${i - 1}`), { recursive: true, force: true });
      // S2 and S3 build S1's context: S1b's rounds are not their warm state.
      return h.coldRound(fx.ctx, i, 's1b', { keepWarm: true });
    },
  );
  floorRatio(h.results.S1B);
}
