// One-layer scenarios onto scratch, against shell pipelines of the same work:
//  S4: a big tree (1 GiB; 64 MiB with --quick) against tar | gzip (one core) and tar | pigz (all cores);
//  S8: a node_modules-shaped tree (100,000 small files; 10,000 with --quick), cold against
//      tar | pigz, and its no-op rebuild (S8N).
import { availableParallelism } from 'node:os';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeBigTree } from './fixtures.mjs';
import { makeNodeModules } from './fixtures-more.mjs';
import { fmtBytes, measured, parseBytes } from './util.mjs';

const NPROC = availableParallelism();

/** ours: build --output oci:DIR (blobs hard-linked from the cache dir), no push. */
async function oursLayout(h, ctx, cacheDir, layout, logFile) {
  rmSync(layout, { recursive: true, force: true });
  const r = await measured(
    process.execPath,
    [
      h.CLI,
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--output',
      `oci:${layout}`,
      '--cache-dir',
      cacheDir,
      '--gzip-level',
      String(h.GZIP_LEVEL),
    ],
    { log: logFile },
  );
  const m = /layer [0-9a-f]+: .*\((\d+) entries, ([^>]+) -> ([^)]+)\)/.exec(r.stderr);
  return { ms: r.ms, rssKiB: r.rssKiB, cpuMs: r.cpuMs, outputBytes: m ? parseBytes(m[3]) : NaN, entries: m ? Number(m[1]) : NaN };
}

/**
 * `tar -C ctx -cf - tree | COMPRESSOR | sha256sum`. The warm-up round also records the
 * compressed size (tee to wc costs a copy, so only there).
 */
async function pipeline(h, i, ctx, compressor, logFile) {
  if (i < h.WARMUP) {
    const sizeFile = join(h.BENCH, 'out', 'pipeline-size');
    mkdirSync(dirname(sizeFile), { recursive: true });
    const r = await measured(
      'bash',
      ['-c', `set -o pipefail; tar -C '${ctx}' -cf - tree | ${compressor} | tee >(wc -c > '${sizeFile}') | sha256sum; wait $!`],
      { log: logFile },
    );
    return { ms: r.ms, rssKiB: r.rssKiB, cpuMs: r.cpuMs, outputBytes: Number(readFileSync(sizeFile, 'utf8').trim()) };
  }
  const r = await measured('sh', ['-c', `tar -C '${ctx}' -cf - tree | ${compressor} | sha256sum`], { log: logFile });
  return { ms: r.ms, rssKiB: r.rssKiB, cpuMs: r.cpuMs };
}

/** The pipelines' sizes are measured once (warm-up): show them as their medians. */
function pipelineSizes(res, names) {
  for (const t of names) res.tools[t].median.outputBytes = res.tools[t].warmup.outputBytes;
}

export async function s4(h) {
  const big = makeBigTree(h.BENCH, h.BIG_BYTES);
  const gz = `gzip -${h.GZIP_LEVEL} -n`;
  const pz = `pigz -p ${NPROC} -${h.GZIP_LEVEL} -n`;
  h.record('S4', `big layer: ${fmtBytes(big.bytes)} tree (${big.files} files) copied as one layer onto scratch`, [
    'ours: build with --output oci:DIR (blobs hard-linked from the cache), no push, a new --cache-dir each run',
    `pipeline: sh -c "tar -C CTX -cf - tree | ${gz} | sha256sum" -- the practical limit on one core`,
    `pigz: sh -c "tar -C CTX -cf - tree | ${pz} | sha256sum" -- the same cores as ours (target: pigz / ours >= 1.0, ours' peak RSS < 256 MiB)`,
    'the tree is in the page cache for all (warm-up round); peak RSS of a pipeline is its largest process',
  ]);
  h.results.S4.tree = { bytes: big.bytes, files: big.files, dirs: big.dirs };
  const layout = join(h.BENCH, 'out', 's4-layout');
  await h.alternate('S4', {
    ours: async (i) => oursLayout(h, big.ctx, h.newCacheDir('s4'), layout, join(h.LOGS, `S4-ours-${i}.log`)),
    pipeline: async (i) => pipeline(h, i, big.ctx, gz, join(h.LOGS, `S4-pipeline-${i}.log`)),
    pigz: async (i) => pipeline(h, i, big.ctx, pz, join(h.LOGS, `S4-pigz-${i}.log`)),
  });
  pipelineSizes(h.results.S4, ['pipeline', 'pigz']);
  rmSync(layout, { recursive: true, force: true });
  rmSync(join(h.BENCH, 'cache', 's4'), { recursive: true, force: true });
}

export async function s8(h) {
  const nm = makeNodeModules(h.BENCH, h.QUICK ? 10_000 : 100_000);
  const pz = `pigz -p ${NPROC} -${h.GZIP_LEVEL} -n`;
  const what = `${nm.files} files of 1-8 KiB (${fmtBytes(nm.bytes)}), ${nm.packages} packages, ${nm.dirs} directories, ${nm.symlinks} .bin/ symlinks`;
  h.record('S8', `many small files, cold: a node_modules-shaped tree (${what}) copied as one layer onto scratch`, [
    'ours: build with --output oci:DIR, no push, a new --cache-dir each run',
    `pipeline: sh -c "tar -C CTX -cf - tree | ${pz} | sha256sum" (target: pipeline / ours >= 1.0)`,
    'the tree is in the page and dentry caches for both (warm-up round)',
  ]);
  h.results.S8.tree = { files: nm.files, bytes: nm.bytes, dirs: nm.dirs, symlinks: nm.symlinks, packages: nm.packages };
  const layout = join(h.BENCH, 'out', 's8-layout');
  await h.alternate('S8', {
    ours: async (i) => oursLayout(h, nm.ctx, h.newCacheDir('s8'), layout, join(h.LOGS, `S8-ours-${i}.log`)),
    pipeline: async (i) => pipeline(h, i, nm.ctx, pz, join(h.LOGS, `S8-pipeline-${i}.log`)),
  });
  pipelineSizes(h.results.S8, ['pipeline']);

  // No-op: the same build again with the cache dir of an untimed first build.
  h.record('S8N', 'many small files, no-op rebuild: S8 again with nothing changed (same --cache-dir)', [
    'one untimed build fills the cache dir, then each run builds again into a fresh oci: layout (target: < 1 s)',
  ]);
  const warm = h.newCacheDir('s8-warm');
  await oursLayout(h, nm.ctx, warm, layout, join(h.LOGS, 'S8N-prep.log'));
  await h.alternate('S8N', {
    ours: async (i) => oursLayout(h, nm.ctx, warm, layout, join(h.LOGS, `S8N-ours-${i}.log`)),
  });
  rmSync(layout, { recursive: true, force: true });
  rmSync(join(h.BENCH, 'cache', 's8'), { recursive: true, force: true });
  rmSync(warm, { recursive: true, force: true });
}
