// S6 (issue 13): the demon example's Dockerfiles (examples/demon: a shared Rust builder made with
// apt-get install cargo, then three multi-stage components), ours (one build of the build file,
// its `dockerfile:` variants) against buildah (bud of the builder, then bud of each component,
// then push of each), alternating. S6 cold, S6N no-op rebuild, S6E one source file changed.
import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAptProxy } from './apt-proxy.mjs';
import { SUITE } from './fixtures.mjs';
import { log, measured, parseBytes } from './util.mjs';

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'demon');
export const S6_COMPONENTS = ['operate-ui', 'runtime', 'engine'];
/** The file S6E edits: one component's source, after its COPY only that component rebuilds. */
export const S6_EDITED = 'engine/src/main.rs';

/** A copy of examples/demon to build and edit (the checkout is never written). */
function demonContext(h) {
  const ctx = join(h.BENCH, 'demon');
  rmSync(ctx, { recursive: true, force: true });
  cpSync(EXAMPLE, ctx, { recursive: true });
  return ctx;
}

export async function s6(h) {
  const ctx = demonContext(h);
  const proxy = await startAptProxy(join(h.BENCH, 'apt-cache'));
  const baseRef = () => `${h.reg.host}/bench/base:${SUITE}`;
  const env = (runId) => ({ DEBIAN_BASE: baseRef(), REGISTRY: h.reg.host, OWNER: `bench-${runId}`, APT_PROXY: proxy.url });

  /** Ours: one build of the whole matrix; the per-layer report (--verbose) says what was built. */
  const ours = (runId, cacheDir, logFile) =>
    h.withRegistryStats(async () => {
      const r = await measured(
        process.execPath,
        [
          h.CLI,
          'build',
          '--config',
          join(ctx, 'oci-build.yml'),
          '--push',
          '--cache-dir',
          cacheDir,
          '--gzip-level',
          String(h.GZIP_LEVEL),
          '--verbose',
        ],
        { env: { ...process.env, ...env(runId) }, log: logFile },
      );
      const layers = JSON.parse(r.stdout).layers;
      const built = layers.filter((l) => ['built', 'speculated'].includes(l.origin)).map((l) => `${l.variant}: ${l.createdBy}`);
      const m = /push: \d+ image\(s\): (\d+) blobs uploaded \(([^)]+)\)/.exec(r.stderr);
      return { ms: r.ms, rssKiB: r.rssKiB, built, self: m ? { blobsUploaded: Number(m[1]), bytesUploaded: parseBytes(m[2]) } : undefined };
    });

  /** buildah: bud of the builder (FROM rust-builder in the components finds it locally), of each component, then push each. */
  const buildah = (runId, logFile) =>
    h.withRegistryStats(async () => {
      const steps = [];
      const step = async (name, args) => {
        const r = await measured('buildah', [...h.BUILDAH, ...args], { log: logFile });
        steps.push({ step: name, ms: r.ms, rssKiB: r.rssKiB });
      };
      const args = ['--build-arg', `DEBIAN_BASE=${baseRef()}`];
      const bud = ['bud', '--isolation', 'chroot', '--layers', '--tls-verify=false'];
      await step('bud rust-builder', [
        ...bud,
        ...args,
        '--build-arg',
        `APT_PROXY=${proxy.url}`,
        '-t',
        'localhost/rust-builder',
        join(ctx, 'containers/rust-builder'),
      ]);
      for (const c of S6_COMPONENTS) await step(`bud ${c}`, [...bud, ...args, '-t', `localhost/bench/demon-${c}`, join(ctx, c)]);
      for (const c of S6_COMPONENTS)
        await step(`push ${c}`, [
          'push',
          '--tls-verify=false',
          `localhost/bench/demon-${c}`,
          `docker://${h.reg.host}/bench-buildah-${runId}/demon-${c}:bench`,
        ]);
      return {
        ms: steps.reduce((a, s) => a + s.ms, 0),
        rssKiB: Math.max(...steps.map((s) => s.rssKiB)),
        steps,
      };
    });

  let last;
  try {
    h.record(
      'S6',
      'Dockerfiles, cold: examples/demon (Rust builder with apt-get install cargo + three multi-stage components), empty caches',
      [
        'ours: one build of examples/demon/oci-build.yml (dockerfile: variants); buildah: bud rust-builder, bud x3 (FROM rust-builder found locally), push x3',
        'a fresh registry per round holding only the Debian base; buildah rm -a, rmi -af; apt through the caching proxy (as S5)',
      ],
    );
    await h.alternate(
      'S6',
      {
        ours: async (i, r) => {
          await h.settle(ctx);
          const out = await ours(r.runId, r.cacheDir, join(h.LOGS, `S6-ours-${i}.log`));
          last = { ...r };
          return out;
        },
        buildah: async (i, r) => {
          await h.buildahClean();
          await h.settle(ctx);
          return buildah(r.runId, join(h.LOGS, `S6-buildah-${i}.log`));
        },
      },
      (i) => h.coldRound(ctx, i, 's6', { keepWarm: true }),
    );

    h.record(
      'S6N',
      'Dockerfiles, no-op rebuild: S6 again with nothing changed (same cache dir, same buildah storage, same repositories)',
      [],
    );
    await h.alternate('S6N', {
      ours: (i) => ours(last.runId, last.cacheDir, join(h.LOGS, `S6N-ours-${i}.log`)),
      buildah: (i) => buildah(last.runId, join(h.LOGS, `S6N-buildah-${i}.log`)),
    });
    h.results.S6N.layersBuiltMax = Math.max(...h.results.S6N.tools.ours.runs.map((r) => r.built.length));

    h.record('S6E', `Dockerfiles, one source file changed: ${S6_EDITED} edited before each round, then S6N`, [
      'each round appends a comment line; ours: the layers our report says were built (expected: the engine builder COPY src and RUN cargo build, the runtime COPY --from)',
    ]);
    const file = join(ctx, S6_EDITED);
    const original = readFileSync(file);
    try {
      await h.alternate(
        'S6E',
        {
          ours: (i) => ours(last.runId, last.cacheDir, join(h.LOGS, `S6E-ours-${i}.log`)),
          buildah: (i) => buildah(last.runId, join(h.LOGS, `S6E-buildah-${i}.log`)),
        },
        async (i) => appendFileSync(file, `// bench edit ${Date.now().toString(36)}-${i}\n`),
      );
    } finally {
      writeFileSync(file, original);
    }
    const builtSets = h.results.S6E.tools.ours.runs.map((r) => r.built);
    h.results.S6E.oursBuilt = builtSets[0];
    h.results.S6E.onlyAfterCopy = builtSets.every(
      (b) => b.length > 0 && b.every((l) => /^engine(\.builder)?: (COPY src|RUN .*cargo build|COPY --from=builder)/.test(l)),
    );
    log(`S6E ours built: ${JSON.stringify(builtSets[0])}`);
  } finally {
    await proxy.stop();
  }
}
