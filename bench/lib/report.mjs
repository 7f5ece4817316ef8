// The results table (stdout, README) and the targets, from the scenarios' results.
import { fmtBytes, fmtMs, table } from './util.mjs';

/** Scenario ids in the order of the table. */
export const ORDER = ['S1', 'S1B', 'S2', 'S3', 'S4', 'S5', 'S6', 'S6N', 'S6E', 'S7', 'S7P', 'S8', 'S8N', 'S9'];

/**
 * The targets the results are checked against (issues 7 and 16): value, target, met.
 * A target whose scenario did not run (or lacks the tool) is left out.
 */
export function targets(results) {
  const out = [];
  const med = (id, t) => results[id]?.tools?.[t]?.median;
  const add = (id, what, value, target, met, fmt = (v) => `${v.toFixed(2)}x`) => {
    if (Number.isFinite(value)) out.push({ scenario: id, what, value, shown: fmt(value), target, met: met(value) });
  };
  for (const id of ['S1', 'S1B']) {
    if (med(id, 'floor')) add(id, 'ours / floor', med(id, 'ours').ms / med(id, 'floor').ms, '<= 1.3x', (v) => v <= 1.3);
  }
  if (results.S3?.layerAlone) add('S3', 'ours / layer alone', results.S3.oursOverAlone, '<= 2x', (v) => v <= 2);
  if (med('S4', 'pigz')) {
    add('S4', 'pigz pipeline / ours', med('S4', 'pigz').ms / med('S4', 'ours').ms, '>= 1.0x', (v) => v >= 1);
    add('S4', 'ours peak RSS', med('S4', 'ours').rssKiB * 1024, '< 256 MiB', (v) => v < 256 * 1048576, fmtBytes);
  }
  if (med('S7', 'buildah')) {
    add('S7', 'buildah / ours (cold build + push, big image)', med('S7', 'buildah').ms / med('S7', 'ours').ms, '>= 5x', (v) => v >= 5);
    add('S7', 'ours peak RSS', med('S7', 'ours').rssKiB * 1024, '< 256 MiB', (v) => v < 256 * 1048576, fmtBytes);
  }
  if (med('S7P', 'skopeo')) {
    add('S7P', 'skopeo / ours (pull into an OCI layout)', med('S7P', 'skopeo').ms / med('S7P', 'ours').ms, '>= 1.0x', (v) => v >= 1);
    add('S7P', 'ours peak RSS', med('S7P', 'ours').rssKiB * 1024, '< 256 MiB', (v) => v < 256 * 1048576, fmtBytes);
  }
  if (med('S8', 'pipeline')) add('S8', 'pipeline / ours', med('S8', 'pipeline').ms / med('S8', 'ours').ms, '>= 1.0x', (v) => v >= 1);
  if (med('S8', 'pipeline')?.cpuMs)
    add(
      'S8',
      'pipeline / ours by CPU time (user + sys: fair on a shared machine)',
      med('S8', 'pipeline').cpuMs / med('S8', 'ours').cpuMs,
      '>= 1.0x',
      (v) => v >= 1,
    );
  if (med('S8N', 'ours')) add('S8N', 'no-op rebuild', med('S8N', 'ours').ms, '< 1 s', (v) => v < 1000, fmtMs);
  if (med('S6', 'buildah'))
    add('S6', 'buildah / ours (cold Dockerfiles)', med('S6', 'buildah').ms / med('S6', 'ours').ms, '>= 2x', (v) => v >= 2);
  if (med('S6N', 'ours')) {
    add('S6N', 'no-op rebuild', med('S6N', 'ours').ms, '< 1 s', (v) => v < 1000, fmtMs);
    add('S6N', 'uploaded', med('S6N', 'ours').selfReportedUpload, '0 B', (v) => v === 0, fmtBytes);
    add('S6N', 'layers built (most in a run)', results.S6N.layersBuiltMax, '0', (v) => v === 0, String);
  }
  if (results.S6E?.onlyAfterCopy !== undefined)
    add(
      'S6E',
      'only the layers after the changed COPY built',
      results.S6E.onlyAfterCopy ? 1 : 0,
      'yes',
      (v) => v === 1,
      (v) => (v ? 'yes' : 'no'),
    );
  if (med('S9', 'ours')) {
    add('S9', 'empty cache, registry record', med('S9', 'ours').ms, '< 2 s', (v) => v < 2000, fmtMs);
    add('S9', 'layers built (most in a run)', results.S9.layersBuiltMax, '0', (v) => v === 0, String);
    add('S9', 'run: commands executed (apt requests, most in a run)', results.S9.aptRequestsMax, '0', (v) => v === 0, String);
  }
  return out;
}

/** Each tool's median over the first tool's (ours): "ratio" in the table. */
export function ratios(s) {
  const [first, ...rest] = Object.keys(s.tools);
  s.ratios = Object.fromEntries(rest.map((t) => [t, s.tools[t].median.ms / s.tools[first].median.ms]));
  // The first comparison, as before there were more (buildah / ours; pipeline / ours).
  s.ratio = rest.length ? s.ratios[rest[0]] : NaN;
  s.ratioOf = rest.length ? `${rest[0]} / ${first}` : undefined;
}

export function report(results, info, o) {
  const rows = [['scenario', 'tool', 'median', 'min-max', 'ratio', 'uploaded', 'ours says', 'reg. growth', 'output', 'peak RSS']];
  for (const id of ORDER) {
    const s = results[id];
    if (!s) continue;
    if (s.skipped) {
      rows.push([id, 'skipped', '', '', '', '', '', '', '', '']);
      continue;
    }
    const names = Object.keys(s.tools);
    names.forEach((t, k) => {
      const m = s.tools[t].median;
      // Older results files have one ratio (the last tool / the first).
      const ratio = k === 0 ? undefined : (s.ratios?.[t] ?? (k === names.length - 1 ? s.ratio : undefined));
      rows.push([
        k === 0 ? `${id}${s.carriedOver ? '*' : ''}` : '',
        t,
        fmtMs(m.ms),
        `${fmtMs(m.minMs)}-${fmtMs(m.maxMs)}`,
        ratio === undefined ? '' : `${ratio.toFixed(2)}x`,
        fmtBytes(m.uploaded),
        fmtBytes(m.selfReportedUpload),
        fmtBytes(m.registryGrowth),
        fmtBytes(m.outputBytes),
        fmtBytes(m.rssKiB * 1024),
      ]);
    });
  }
  const lines = [
    `oci-build benchmark ${info.date} (${o.quick ? 'quick, ' : ''}${o.runs} measured run(s) + ${o.warmup} warm-up per tool, alternating)`,
    `machine: ${info.nproc} CPU(s) ${info.cpuModel}, ${fmtBytes(info.memoryBytes)} RAM, Linux ${info.kernel}, node ${info.node}, ${info.buildah}`,
    '',
    table(rows),
    ...ORDER.filter((id) => results[id]?.carriedOver)
      .slice(0, 1)
      .map(() => '* from an earlier run (see carriedOver in the JSON: date, commit, sha256 of cli.js)'),
    ...ORDER.filter((id) => results[id]?.skipped).map((id) => `${id} skipped: ${results[id].skipped}`),
    ...(results.S3?.layerAlone ? [`S3 layer alone (median): ${fmtMs(results.S3.layerAlone.medianMs)}`] : []),
    ...(results.S5?.perRunStep
      ? [
          `S5 per run: step (ours, sandbox + snapshots + layer): ${fmtMs(results.S5.perRunStep.ms)} (${results.S5.perRunStep.description}); the build's own step time, median: ${results.S5.perRunStep.inBuildMedianMs !== undefined ? fmtMs(results.S5.perRunStep.inBuildMedianMs) : '-'}`,
        ]
      : []),
    ...ORDER.filter((id) => results[id]?.tools?.buildah?.median?.budMs !== undefined).map((id) => {
      const m = results[id].tools.buildah.median;
      return `${id} buildah split (medians): bud ${fmtMs(m.budMs)}, push ${fmtMs(m.pushMs)}`;
    }),
    ...targets(results).map((t) => `target ${t.scenario} ${t.what}: ${t.shown} (target ${t.target}) ${t.met ? 'met' : 'MISSED'}`),
    '',
    "ratio = that row's median / ours (above 1: ours is faster). uploaded = request bodies through the counting proxy",
    'in front of the registry (blobs + manifests); ours says = our "push:" log line; reg. growth = du -sb of the',
    'registry storage after - before; peak RSS = /usr/bin/time %M (buildah: the largest of its bud/push processes).',
    "floor = this machine's least for the same new bytes: tar | pigz on all cores + both sha256, curl upload (bench/README.md).",
  ];
  return lines.join('\n');
}
