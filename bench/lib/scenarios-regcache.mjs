// S9 (issue 16): the S5 build on a fresh --cache-dir, the registry holding the previous build
// (and the layer cache record its push wrote, tag buildcache). Nothing should run or compress.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAptProxy } from './apt-proxy.mjs';
import { log, run } from './util.mjs';

export async function s9(h, ctx) {
  const plan = await run(process.execPath, [h.CLI, 'plan', '--config', join(ctx, 'oci-build-run.yml')], { allowFail: true });
  if (plan.code !== 0) {
    h.results.S9 = { description: 'registry cache', skipped: 'the measured build rejects run: steps' };
    return;
  }
  h.record(
    'S9',
    'S5 on an empty --cache-dir, the registry holding the previous S5 build and its layer cache record (cache-registry: auto)',
    [
      'one untimed S5 build pushes the image (and the record) to a fresh registry; each run then builds and pushes again with a new --cache-dir',
      'caches dropped before each run (as S5); run: commands executed = requests the apt proxy saw during the run (apt-get update makes some)',
    ],
  );
  const proxy = await startAptProxy(join(h.BENCH, 'apt-cache'));
  const env = { APT_PROXY: proxy.url };
  const perRun = [];
  try {
    const prep = await h.coldRound(ctx, 0, 's9', { keepWarm: true });
    await h.ours(ctx, prep.runId, prep.cacheDir, join(h.LOGS, 'S9-prep.log'), 'oci-build-run.yml', env);
    await h.alternate('S9', {
      ours: async (i) => {
        const dir = h.newCacheDir(`s9-run-${i}`);
        await h.settle(ctx);
        const apt0 = proxy.counters.hits + proxy.counters.misses;
        const logFile = join(h.LOGS, `S9-ours-${i}.log`);
        const r = await h.ours(ctx, prep.runId, dir, logFile, 'oci-build-run.yml', env);
        const text = readFileSync(logFile, 'utf8');
        const built = Number(/layers: (\d+) built/.exec(text)?.[1] ?? NaN);
        const aptRequests = proxy.counters.hits + proxy.counters.misses - apt0;
        if (i >= h.WARMUP) perRun.push({ built, aptRequests });
        rmSync(dir, { recursive: true, force: true });
        return { ...r, layersBuilt: built, aptRequests };
      },
    });
  } finally {
    await proxy.stop();
  }
  h.results.S9.layersBuiltMax = Math.max(...perRun.map((x) => x.built));
  h.results.S9.aptRequestsMax = Math.max(...perRun.map((x) => x.aptRequests));
  log(`S9: layers built (most in a run) ${h.results.S9.layersBuiltMax}, apt requests (most in a run) ${h.results.S9.aptRequestsMax}`);
}
