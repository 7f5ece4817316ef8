import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { plan, type PipelineInputs } from '../plan/plan.js';
import { formatPlatform, descriptorPlatform, parsePlatform } from '../oci/platform.js';
import { formatRepository, parseReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/types.js';
import { buildIndex } from '../build/assemble.js';
import type { BuiltVariant } from '../image/image.js';
import { RegistryClient } from '../registry/client.js';
import { credentialsFrom } from '../registry/credentials.js';
import { RegistryPublisher, type PublishTarget } from '../output/publisher.js';
import { DigestMapRecorder, type DigestMap, type DigestMapEntry } from '../output/digest-map.js';
import { buildFileHash, readPartial, type PartialMap, type PartialPlatform } from './partial.js';
import { formatMs, type Logger } from '../log.js';
import { attachPushed, attestMerged, digestsOfMerged, type MergedIndex } from '../attest/glue.js';

export class MergeError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot merge the partial digest maps:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'MergeError';
  }
}

export interface MergeResult {
  digestMap: DigestMap;
  digests: Record<string, string>;
  digestMapPath?: string;
}

/**
 * The downstream job of a distributed build: checks the partial maps against the build file,
 * assembles each multi-platform variant's index from the manifests the jobs pushed by digest
 * (no blob moves), pushes it, applies the tags once, and writes the combined digest map.
 */
export async function runMerge(inputs: PipelineInputs, partialFiles: string[], logger: Logger): Promise<MergeResult> {
  const t0 = Date.now();
  const p = await plan(inputs);
  const hash = buildFileHash(await readFile(p.buildFile.file, 'utf8'));
  if (partialFiles.length === 0)
    throw new MergeError(['no partial digest maps were given (did the build jobs run with distribute: true and upload them?)']);
  const partials: { file: string; map: PartialMap }[] = [];
  for (const f of partialFiles) partials.push({ file: f, map: await readPartial(f) });
  const problems: string[] = [];
  for (const { file, map } of partials) {
    if (map.buildFile !== hash)
      problems.push(
        `${file} (job ${map.job}) was built from a different revision of ${p.buildFile.file}; re-run the build jobs and the merge from the same commit`,
      );
  }
  const targets: PublishTarget[] = [];
  const recorder = new DigestMapRecorder();
  const checks: { repo: { registry: string; repository: string }; d: Descriptor }[] = [];
  const merged: MergedIndex[] = [];
  for (const v of p.variants) {
    const found = partials.filter(({ map }) => map.variants[v.name]);
    if (!v.image) continue; // plan() already requires an image when pushing
    const ref = parseReference(v.image, { repositoryOnly: true });
    const repo = { registry: ref.registry, repository: ref.repository };
    const image = formatRepository(ref);
    if (!p.asIndex.has(v.name)) {
      const entries = found.map(({ file, map }) => ({ file, pv: map.variants[v.name]! }));
      const e = entries.find((x) => x.pv.kind === 'entry');
      if (!e || e.pv.kind !== 'entry') {
        problems.push(`variant ${v.name}: missing (no partial map has it)`);
        continue;
      }
      const other = entries.find((x) => x.pv.kind === 'entry' && x.pv.entry.digest !== (e.pv as { entry: DigestMapEntry }).entry.digest);
      if (other) problems.push(`variant ${v.name}: built twice with different digests (${e.file} and ${other.file})`);
      recorder.record(v.name, e.pv.entry);
      continue;
    }
    const platforms = (p.platforms.get(v.name) ?? []).map(formatPlatform);
    const chosen = new Map<string, PartialPlatform>();
    for (const plat of platforms) {
      const seen = found.flatMap(({ file, map }) => {
        const pv = map.variants[v.name];
        return pv?.kind === 'platforms' && pv.platforms[plat] ? [{ file, pp: pv.platforms[plat]! }] : [];
      });
      if (seen.length === 0) {
        problems.push(`variant ${v.name}: platform ${plat} is missing (no partial map has it)`);
        continue;
      }
      const diff = seen.find((s) => s.pp.digest !== seen[0]!.pp.digest);
      if (diff)
        problems.push(
          `variant ${v.name}: platform ${plat} was built twice with different digests (${seen[0]!.file}: ${seen[0]!.pp.digest}, ${diff.file}: ${diff.pp.digest})`,
        );
      chosen.set(plat, seen[0]!.pp);
    }
    if (chosen.size !== platforms.length) continue;
    const manifests: Descriptor[] = platforms.map((plat) => {
      const pp = chosen.get(plat)!;
      return {
        mediaType: pp.mediaType,
        digest: pp.digest,
        size: pp.size,
        platform: { ...descriptorPlatform(parsePlatform(plat)), ...(pp.variant ? { variant: pp.variant } : {}) },
      };
    });
    for (const d of manifests) checks.push({ repo, d });
    const index = buildIndex(manifests, v.annotations);
    const variant: BuiltVariant = {
      variant: v.name,
      images: [],
      index: { bytes: index.bytes, descriptor: index.descriptor },
      tagged: index.descriptor,
      taggedBytes: index.bytes,
      totalSize: [...chosen.values()].reduce((n, pp) => n + pp.totalSize, 0) + index.bytes.length,
    };
    const tags = p.tags.get(v.name) ?? [];
    targets.push({ variant, repo, tags });
    merged.push({
      variant: v.name,
      image,
      index: index.descriptor,
      platforms: platforms.map((plat, i) => ({
        manifest: manifests[i]!,
        platform: plat,
        ...(chosen.get(plat)!.base ? { base: chosen.get(plat)!.base! } : {}),
      })),
    });
    // The platform manifests' attestations, as the build jobs recorded them.
    const platformAttestations = Object.assign(
      {},
      ...found.map(({ map }) => {
        const pv = map.variants[v.name];
        return pv?.kind === 'platforms' ? (pv.attestations ?? {}) : {};
      }),
    );
    recorder.record(v.name, {
      image,
      digest: index.descriptor.digest,
      mediaType: index.descriptor.mediaType,
      ref: `${image}@${index.descriptor.digest}`,
      tags: tags.map((t) => `${image}:${t}`),
      size: variant.totalSize,
      pushed: true,
      platforms: Object.fromEntries(platforms.map((plat) => [plat, { digest: chosen.get(plat)!.digest, size: chosen.get(plat)!.size }])),
      ...(Object.keys(platformAttestations).length ? { attestations: platformAttestations } : {}),
    });
  }
  if (problems.length) throw new MergeError(problems);
  logger.info(
    `merge: ${partials.length} partial map(s), ${p.variants.length} variant(s), ${targets.length} index(es) to assemble in ${formatMs(Date.now() - t0)}`,
  );

  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: inputs.credentials, dockerConfigPath: inputs.dockerConfig ? undefined : null }),
    logger,
  });
  try {
    // The manifests must already be in the registry: the merge uploads no blob.
    const missing: string[] = [];
    await Promise.all(
      checks.map(async ({ repo, d }) => {
        const head = await client.headManifest(repo, d.digest);
        if (!head) missing.push(`${formatRepository(repo)}@${d.digest} (${d.platform ? formatPlatform(d.platform) : ''})`);
      }),
    );
    if (missing.length)
      throw new MergeError(missing.sort().map((m) => `manifest ${m} is not in the registry: the build job that made it did not push it`));
    const attestations = await attestMerged(
      p.buildFile,
      p.variants,
      merged,
      {
        provenance: inputs.provenance ?? false,
        sbom: false,
        sourceDateEpoch: inputs.sourceDateEpoch,
        git: inputs.git,
        env: inputs.env,
        ...(inputs.signing ? { signing: inputs.signing } : {}),
      },
      logger,
    );
    for (const [variant, own] of Object.entries(digestsOfMerged(attestations))) {
      const e = recorder.toJSON()[variant]!;
      recorder.record(variant, { ...e, attestations: { ...e.attestations, ...own } });
    }
    const publisher = new RegistryPublisher(client, logger);
    // The indexes' provenance goes up after the indexes and before any tag moves, as in a build.
    const stats = await logger.group('push', () =>
      publisher.publish(targets, { beforeTags: () => attachPushed(client, attestations, targets) }),
    );
    logger.info(
      `merge: ${stats.manifestsPushed} index(es) pushed, ${stats.tagsWritten + stats.tagsInPlace} tag(s), ${stats.blobsUploaded} blobs uploaded`,
    );
  } finally {
    await client.close();
  }
  let digestMapPath: string | undefined;
  if (inputs.digestMap) {
    digestMapPath = resolve(inputs.digestMap);
    await recorder.write(digestMapPath);
    logger.info(`digest map: ${digestMapPath}`);
  }
  return { digestMap: recorder.toJSON(), digests: recorder.digests(), digestMapPath };
}
