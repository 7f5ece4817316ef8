// S7 (issue 16): a 2 GiB dev image (bench/lib/fixtures-big.mjs), cold build + push against
// buildah bud + push, then S7P, the pull side: `oci-build pull` of the pushed image into an
// OCI layout against `skopeo copy docker://... oci:...`. Alternating, as every scenario.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAptProxy } from './apt-proxy.mjs';
import { makeS7Context, S7_PACKAGES } from './fixtures-big.mjs';
import { fmtBytes, log, measured } from './util.mjs';

export async function s7(h) {
  const fx = makeS7Context(h.BENCH, h.QUICK);
  const { shape, stats } = fx;
  h.record(
    'S7',
    `big image, cold: Debian base + run: apt-get install ${S7_PACKAGES} + two ${fmtBytes(shape.binaryBytes)} binaries + a ${fmtBytes(stats.assets.bytes)} tree of ${stats.assets.files} mixed files + a node_modules tree of ${stats.modules.files} files (${fmtBytes(stats.modules.bytes)}) + run: useradd; one image`,
    [
      'as S1: a fresh registry per round holding only the base, a new repository, a new --cache-dir, buildah rm -a; rmi -af; caches dropped and inputs read back in before each run',
      'apt goes through the S5 caching proxy (the warm-up round fills it), so the mirror is not timed',
      'buildah time = bud (--layers, --isolation chroot) + push; targets: buildah / ours >= 5x, ours peak RSS < 256 MiB',
    ],
  );
  h.results.S7.fixture = { ...shape, bytes: fx.bytes, assets: stats.assets, modules: stats.modules };
  const proxy = await startAptProxy(join(h.BENCH, 'apt-cache'));
  const env = { APT_PROXY: proxy.url, http_proxy: proxy.url };
  let last;
  try {
    await h.alternate(
      'S7',
      {
        ours: async (i, r) => {
          await h.settle(fx.ctx);
          return h.ours(fx.ctx, r.runId, r.cacheDir, join(h.LOGS, `S7-ours-${i}.log`), 'oci-build.yml', { APT_PROXY: proxy.url });
        },
        buildah: async (i, r) => {
          await h.buildahClean();
          await h.settle(fx.ctx);
          return h.buildah(fx.ctx, r.runId, join(h.LOGS, `S7-buildah-${i}.log`), { images: ['dev'], targets: false, env });
        },
      },
      async (i) => {
        if (i > 0) rmSync(join(h.BENCH, 'cache', `s7-${i - 1}`), { recursive: true, force: true });
        last = await h.coldRound(fx.ctx, i, 's7', { keepWarm: true });
        return last;
      },
    );
  } finally {
    await proxy.stop();
  }
  rmSync(join(h.BENCH, 'cache', `s7-${h.WARMUP + h.RUNS - 1}`), { recursive: true, force: true });
  await h.buildahClean();
  await s7Pull(h, `${h.reg.host}/bench/ours-${last.runId}-dev:bench`);
}

/**
 * S7P: the image the last S7 round pushed, pulled into a new OCI layout with an empty cache:
 * ours (`oci-build pull REF --output oci:DIR --cache-dir NEW`) against skopeo copy. Caches
 * dropped and the registry's blobs read back in before each run (as the cold builds).
 */
async function s7Pull(h, ref) {
  h.record('S7P', `big image, pull: ${ref.replace(/^[^/]+\//, '')} (S7's image) into an empty OCI layout`, [
    'ours: oci-build pull REF --output oci:DIR with a new --cache-dir (blobs are downloaded into it, then hard-linked into the layout)',
    'skopeo: skopeo copy --src-tls-verify=false docker://REF oci:DIR:dev',
    "caches dropped and the registry's storage read back in before each run; targets: skopeo / ours >= 1.0, ours peak RSS < 256 MiB",
  ]);
  const out = join(h.BENCH, 'out', 's7-pull');
  const fresh = () => rmSync(out, { recursive: true, force: true });
  const pullRun = async (cmd, args, logFile) => {
    fresh();
    await h.settle(h.reg.data);
    const r = await h.withRegistryStats(async () => measured(cmd, args, { log: logFile }));
    fresh();
    return { ms: r.ms, rssKiB: r.rssKiB, cpuMs: r.cpuMs, uploaded: r.uploaded, downloaded: r.downloaded, registryGrowth: r.registryGrowth };
  };
  await h.alternate('S7P', {
    ours: async (i) => {
      const cacheDir = h.newCacheDir('s7-pull');
      const r = await pullRun(
        process.execPath,
        [h.CLI, 'pull', ref, '--output', `oci:${out}`, '--cache-dir', cacheDir],
        join(h.LOGS, `S7P-ours-${i}.log`),
      );
      rmSync(cacheDir, { recursive: true, force: true });
      return r;
    },
    skopeo: async (i) =>
      pullRun(
        'skopeo',
        ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:dev`],
        join(h.LOGS, `S7P-skopeo-${i}.log`),
      ),
  });
  log(`S7P: skopeo / ours ${h.results.S7P.ratio.toFixed(2)}x`);
}
