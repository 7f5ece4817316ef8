#!/usr/bin/env node
// Builds of oci-build against each other on S1-S3's fixtures (no buildah): where a regression
// comes from. Each build is a dist/ directory plus extra CLI flags; every round runs them all,
// in an order that rotates round by round, and the table gives each one's median and its ratio
// to the first build (the reference). Ratios from one run are what to compare on a shared machine.
//
//   node bench/compare.mjs --build old=/tmp/olddist/dist --build main=dist \
//     --build 'off=dist --sbom false --provenance false --cache-registry false' [--scenarios S1,S2,S3] [--runs 3]
//   --prof DIR   also writes a CPU profile (node --cpu-prof) of each build's last measured run per scenario
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { baseLayout, EDITED_SCENARIO, makeContext, SUITE } from './lib/fixtures.mjs';
import { startRegistry } from './lib/registry.mjs';
import { fmtMs, log, measured, median, run } from './lib/util.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, '.bench');
const { values: opt } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: [] },
    scenarios: { type: 'string', default: 'S1,S2,S3' },
    runs: { type: 'string', default: '3' },
    prof: { type: 'string' },
  },
  strict: true,
});
const RUNS = Number(opt.runs);
const scenarios = new Set(opt.scenarios.split(',').map((s) => s.trim().toUpperCase()));
if (opt.build.length < 1) throw new Error('give at least one --build NAME=DIST [FLAGS...]');
// Each build's dist/ is copied first: a rebuild of dist/ during the run must not change what is measured.
const builds = opt.build.map((spec) => {
  const m = /^([\w-]+)=(\S+)\s*(.*)$/.exec(spec);
  if (!m) throw new Error(`--build ${spec}: expected NAME=DIST [FLAGS...]`);
  const snapshot = join(BENCH, 'compare', m[1], 'dist');
  rmSync(dirname(snapshot), { recursive: true, force: true });
  cpSync(resolve(m[2]), snapshot, { recursive: true });
  return { name: m[1], cli: join(snapshot, 'cli.js'), flags: m[3] ? m[3].split(/\s+/) : [] };
});

const LOGS = join(BENCH, 'logs', 'compare');
mkdirSync(LOGS, { recursive: true });
const base = await baseLayout(BENCH);
const ctx = makeContext(BENCH);
let reg;

async function freshRegistry() {
  if (reg) await reg.stop();
  reg = await startRegistry(join(BENCH, 'registry-compare'));
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${base}:base`, `docker://${reg.direct}/bench/base:${SUITE}`]);
}

/** As bench/run.mjs's settle: the page cache dropped and the inputs read back before a cold run. */
async function settle() {
  await run('sync', []);
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  await run('sh', [
    '-c',
    'find "$@" -type f -print0 | xargs -0 cat > /dev/null',
    'warm',
    ctx,
    reg.data,
    join(BENCH, 'compare'),
    process.execPath,
  ]);
}

async function ours(b, state, label, prof) {
  const node = prof ? ['--cpu-prof', '--cpu-prof-dir', join(resolve(opt.prof), `${label}-${b.name}`)] : [];
  const args = [...node, b.cli, 'build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'bench'];
  args.push('--cache-dir', state.cacheDir, '--gzip-level', '1', ...b.flags);
  reg.reset();
  const r = await measured(process.execPath, args, {
    env: { ...process.env, REGISTRY: reg.host, RUN: state.runId },
    log: join(LOGS, `${label}-${b.name}.log`),
  });
  const c = reg.snapshot();
  return { ms: r.ms, cpuMs: r.cpuMs, requests: c.requests, uploaded: c.uploaded };
}

const table = {};
async function rounds(id, { cold = false, before } = {}) {
  table[id] = Object.fromEntries(builds.map((b) => [b.name, []]));
  for (let i = 0; i <= RUNS; i++) {
    if (cold) await freshRegistry();
    await before?.(i);
    const order = builds.map((_, k) => builds[(k + i) % builds.length]);
    for (const b of order) {
      if (cold) {
        b.state = { runId: `c${b.name}${i}`, cacheDir: join(BENCH, 'cache-compare', `${b.name}-${i}`) };
        rmSync(b.state.cacheDir, { recursive: true, force: true });
        rmSync(join(BENCH, 'cache-compare', `${b.name}-${i - 1}`), { recursive: true, force: true });
        await settle();
      }
      const r = await ours(b, b.state, `${id}-${i}`, opt.prof && i === RUNS);
      log(
        `${id} ${b.name} ${i === 0 ? 'warm-up' : `run ${i}/${RUNS}`}: ${fmtMs(r.ms)} (cpu ${fmtMs(r.cpuMs)}, ${r.requests} requests, load ${loadavg()[0].toFixed(1)})`,
      );
      if (i > 0) table[id][b.name].push(r);
    }
  }
}

try {
  if (scenarios.has('S1') || !builds.every((b) => b.state)) await rounds('S1', { cold: true });
  if (scenarios.has('S2')) await rounds('S2');
  if (scenarios.has('S3')) {
    const file = join(ctx, EDITED_SCENARIO);
    const original = readFileSync(file);
    try {
      await rounds('S3', {
        before: (i) => writeFileSync(file, Buffer.concat([original, Buffer.from(`# compare edit ${Date.now()}-${i}\n`)])),
      });
    } finally {
      writeFileSync(file, original);
    }
  }
} finally {
  if (reg) await reg.stop();
  rmSync(join(BENCH, 'cache-compare'), { recursive: true, force: true });
}

const ref = builds[0].name;
const lines = [`runs: ${RUNS} (+1 warm-up) per build; ratio: median / ${ref}'s median`];
for (const [id, byBuild] of Object.entries(table)) {
  const refMs = median(byBuild[ref].map((r) => r.ms));
  for (const [name, runs] of Object.entries(byBuild)) {
    const ms = median(runs.map((r) => r.ms));
    const cpu = median(runs.map((r) => r.cpuMs));
    lines.push(
      `${id} ${name.padEnd(8)} ${fmtMs(ms).padStart(9)}  x${(ms / refMs).toFixed(2)}  cpu ${fmtMs(cpu)}  requests ${median(runs.map((r) => r.requests))}  [${runs.map((r) => fmtMs(r.ms)).join(', ')}]`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
