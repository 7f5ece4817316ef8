import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { baseOf, buildFileHash, onlySubjects, writePartial } from './distribute/partial.js';
import { parseReference, formatRepository } from './oci/reference.js';
import { formatPlatform } from './oci/platform.js';
import { assembleVariant } from './build/assemble.js';
import { BlobStore } from './layer/blobstore.js';
import { RegistryClient } from './registry/client.js';
import { credentialsFrom } from './registry/credentials.js';
import { DaemonlessBuilder, type LayerKeyEvent } from './build/builder.js';
import { KeyJournal } from './cache/key-journal.js';
import { checkDisk, checkSources } from './plan/prereq.js';
import { walkedSources } from './build/walked.js';
import { checkRegistries, registriesOf } from './plan/reach.js';
import { elevateIfNeeded } from './run/privilege.js';
import type { BuiltImage, BuiltVariant } from './image/image.js';
import { RegistryPublisher, type PublishStats } from './output/publisher.js';
import { RegistrySink } from './output/registry.js';
import { DigestMapRecorder, type DigestMap } from './output/digest-map.js';
import { BufferedLogger } from './output/buffered-logger.js';
import { createSink } from './output/sinks.js';
import type { SinkImage } from './output/sink.js';
import type { LayerReport } from './build/report.js';
import { formatMs, type Logger } from './log.js';
import { noProgress, type Progress } from './progress/progress.js';
import { layerCompressionOf, plan, type PipelineInputs, type Plan } from './plan/plan.js';
import { outputError } from './errors/io.js';
import {
  attachLayout,
  attachPushed,
  attestationDigestsOf,
  attestBuilt,
  referrersOf,
  sbomInventory,
  sbomReuseFrom,
  type SbomScanStats,
} from './attest/glue.js';
import { readLocations, RegistryLayers, writesRecords, type CacheRegistrySetting } from './cache/registry-cache.js';
import { writeRecords } from './cache/registry-cache-write.js';
import type { UsedLayer } from './cache/layer-cache.js';

// The plan phase (inputs, checks, the resolved plan) is src/plan/plan.ts; re-exported for the entry points.
export { layerCompressionOf, plan, type PipelineInputs, type Plan } from './plan/plan.js';

export interface PipelineResult {
  digestMap: DigestMap;
  digests: Record<string, string>;
  variants: BuiltVariant[];
  /** Every layer of every built image (stages included) and where it came from. */
  layers: LayerReport[];
  stats?: PublishStats;
  digestMapPath?: string;
  /** What the SBOM scans read (a rebuild with nothing changed reads no layer). */
  sbom?: SbomScanStats;
  /** Root file system work of the build: layers extracted, copies made (a no-op rebuild does none). */
  rootfs?: { layersExtracted: number; clones: number };
}

/** Sources readable and disk enough, before any layer is written (src/plan/prereq.ts). */
async function checkPrerequisites(p: Plan, inputs: PipelineInputs, builder: DaemonlessBuilder, store: BlobStore): Promise<void> {
  const newBytes = await checkSources(p);
  let baseBytes = 0;
  const seen = new Set<string>();
  for (const v of p.variants) {
    if (v.from !== undefined || !v.base || v.base === 'scratch') continue;
    for (const platform of p.platforms.get(v.name) ?? []) {
      // Resolved once for the run: the build uses these (and a bad base fails here with the builder's message).
      const base = await builder.baseImage(v.base, platform);
      for (const l of base.layers) {
        if (seen.has(l.digest)) continue;
        seen.add(l.digest);
        if ((await store.has(l.digest)) === undefined) baseBytes += l.size;
      }
    }
  }
  await checkDisk({ cache: inputs.workDir, outputs: inputs.outputs.map((o) => o.path) }, { baseBytes, newBytes });
}

/** `progress` shows layers being compressed and blob uploads (live on a terminal, lines in logs). */
export async function runPipeline(inputs: PipelineInputs, logger: Logger, progress: Progress = noProgress): Promise<PipelineResult> {
  const t0 = Date.now();
  const p = await logger.group('validate', async () => {
    const r = await plan(inputs, (m) => logger.warn(m));
    const plats = [...new Set([...r.platforms.values()].flat().map(formatPlatform))];
    logger.info(
      `validate: ${r.buildFile.file}: ${r.variants.length} variant(s) [${r.variants.map((v) => v.name).join(', ')}] for ${plats.join(', ')} in ${formatMs(Date.now() - t0)}`,
    );
    return r;
  });
  // One request to each registry the build pulls a base from or pushes to, before any work.
  await checkRegistries(registriesOf(p.variants, inputs.push));
  // run: and copy: from: steps need root: as root, go on; else run again with sudo, or stop here.
  await elevateIfNeeded(
    p.variants,
    [inputs.workDir, inputs.digestMap, ...inputs.outputs.map((o) => o.path), inputs.distribute?.partialMap],
    logger,
  );
  const store = new BlobStore(resolve(inputs.workDir, 'blobs'));
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: inputs.credentials, dockerConfigPath: inputs.dockerConfig ? undefined : null }),
    logger,
  });
  try {
    const regCache: CacheRegistrySetting = inputs.cache === false ? { mode: 'off' } : (inputs.cacheRegistry ?? { mode: 'auto' });
    const remoteLayers = registryLayers(regCache, inputs, p.variants, client, logger);
    const perVariant = new Map(p.variants.map((v) => [v.name, new BufferedLogger()]));
    // What each layer was keyed by, for `plan --explain` to compare the next build against.
    const journal = inputs.cache === false ? undefined : new KeyJournal(resolve(inputs.workDir));
    // Only what goes somewhere is attested (the SBOM reads every new layer).
    // Only what goes somewhere is attested (the SBOM reads the new layers).
    const attesting = inputs.push || inputs.outputs.some((o) => o.kind === 'oci' || o.kind === 'oci-archive');
    const sbom = attesting && (inputs.sbom ?? false);
    // SBOM inventories are kept per diffID list beside the layer cache (unchanged images read no
    // layer); the base scan's pass over a base's layers fills in the base's.
    const inventory = sbom ? await sbomInventory(inputs.cache === false ? undefined : resolve(inputs.workDir, 'sbom')) : undefined;
    const builder = new DaemonlessBuilder(client, store, {
      cacheDir: inputs.cache === false ? undefined : resolve(inputs.workDir),
      sourceDateEpoch: inputs.sourceDateEpoch,
      compression: layerCompressionOf(inputs),
      ...(inputs.isolation ? { isolation: inputs.isolation } : {}),
      ...(inputs.secrets?.size ? { secrets: inputs.secrets } : {}),
      ...(remoteLayers ? { remoteLayers } : {}),
      chainKeys: writesRecords(regCache, inputs.push, inputs.git?.eventName).write,
      logger,
      variantLogger: (name) => perVariant.get(name) ?? logger,
      progress,
      rebuildFrom: p.rebuildFrom,
      ...(journal ? { onLayerKey: (e: LayerKeyEvent) => journal.add(e) } : {}),
      ...(inventory ? { baseTreeReader: inventory.baseTreeReader, recordLayerCheck: inventory.recordLayerCheck } : {}),
    });
    await checkPrerequisites(p, inputs, builder, store);
    let built: Map<string, BuiltImage[]>;
    try {
      // A group of its own: what the build reports as it goes (layers, progress) stays out of the variants' groups.
      built = await logger.group('build', () => builder.build(p.buildFile, p.variants, (v) => p.platforms.get(v.name) ?? []));
    } finally {
      // The prerequisite walk's stats are this build's only (src/build/walked.ts).
      walkedSources.clear();
      for (const v of p.variants) {
        const buf = perVariant.get(v.name)!;
        await logger.group(`variant ${v.name}`, async () => buf.flushTo(logger));
      }
    }
    const layers = builder.layerReport(p.variants, (v) => p.platforms.get(v.name) ?? []);
    const rootfs = builder.rootfsStats();
    await builder.producer().save();
    await journal?.save();
    const ps = builder.producer().stats;
    logger.info(
      `layers: ${ps.built} built, ${ps.cached} from the layer cache${inputs.cache === false ? ' (off)' : ''}, ${ps.shared} shared between variants`,
    );
    if (remoteLayers)
      logger.info(
        `registry cache: ${remoteLayers.stats.entries} record(s) read from ${remoteLayers.locations.length} location(s); ${remoteLayers.stats.hits} used, ${remoteLayers.stats.rejected} rejected (blob missing or different)`,
      );
    // Stages (stage: true) are built for the variants that use them, and go nowhere.
    const shipped = p.variants.filter((v) => !v.stage);
    const results = shipped.map((v) => assembleVariant(v.name, built.get(v.name)!, p.asIndex.has(v.name), v.annotations));
    const byName = new Map(results.map((r) => [r.variant, r]));
    const recorder = new DigestMapRecorder();
    const sinkImages: SinkImage[] = shipped.map((v) => {
      const r = byName.get(v.name)!;
      const ref = v.image ? parseReference(v.image, { repositoryOnly: true }) : undefined;
      const repo = ref ? { registry: ref.registry, repository: ref.repository } : undefined;
      return { variant: r, ...(repo ? { repo } : {}), image: ref ? formatRepository(ref) : v.name, tags: p.tags.get(v.name) ?? [] };
    });
    const imageOf = (name: string) => sinkImages.find((s) => s.variant.variant === name)!.image;
    const attestations = await attestBuilt(
      p.buildFile,
      shipped,
      results,
      imageOf,
      (l) => l.open(),
      {
        provenance: attesting ? (inputs.provenance ?? false) : false,
        sbom,
        sourceDateEpoch: inputs.sourceDateEpoch,
        git: inputs.git,
        env: inputs.env,
        ...(inputs.signing ? { signing: inputs.signing } : {}),
        // The manifest digest fixes the layers: an SBOM referrer of ours the registry holds for it is this SBOM.
        ...(sbom && inputs.push && inputs.cache !== false
          ? { existingSbom: sbomReuseFrom(client, (name) => sinkImages.find((s) => s.variant.variant === name)?.repo, logger) }
          : {}),
      },
      logger,
      inventory,
    );
    const sb = inventory?.stats;
    if (sb?.images)
      logger.info(
        `sbom: ${sb.images} image(s), ${sb.fromCache} known by their layers, ${sb.fromReferrer} reused from the registry; ${sb.layersRead} layer(s) read (${sb.bytesRead} bytes)`,
      );
    for (const s of sinkImages) {
      const r = s.variant;
      const attested = attestationDigestsOf(attestations, r.variant);
      if (attested) s.referrers = referrersOf(attestations, r.variant);
      recorder.record(r.variant, {
        image: s.image,
        digest: r.tagged.digest,
        mediaType: r.tagged.mediaType,
        ref: `${s.image}@${r.tagged.digest}`,
        tags: s.tags.map((t) => `${s.image}:${t}`),
        size: r.totalSize,
        pushed: inputs.push,
        ...(attested ? { attestations: attested } : {}),
        ...(r.index
          ? {
              platforms: Object.fromEntries(
                r.images.map((i) => [formatPlatform(i.platform), { digest: i.manifestDescriptor.digest, size: i.manifestDescriptor.size }]),
              ),
            }
          : {}),
      });
    }
    // Local outputs are written before anything is pushed: a full disk or an unwritable
    // directory then fails the build with nothing pushed and no tag moved.
    if (inputs.outputs.length) {
      await logger.group('outputs', async () => {
        for (const spec of inputs.outputs) {
          const sink = createSink(spec);
          const t = Date.now();
          try {
            await sink.write(sinkImages);
            if (spec.kind === 'oci') await attachLayout(resolve(spec.path), attestations);
            if (spec.kind === 'docker-archive' && (inputs.provenance || inputs.sbom))
              logger.warn(
                `output: ${sink.description} holds no attestations (docker load has no place for them): use oci-archive: or oci: to keep them`,
              );
          } catch (err) {
            throw outputError(err, sink.description, resolve(spec.path), inputs.push);
          }
          logger.info(`output: ${sink.description} (${sinkImages.length} variant(s)) in ${formatMs(Date.now() - t)}`);
        }
      });
    }
    let stats: PublishStats | undefined;
    if (inputs.push) {
      const registry = new RegistrySink(new RegistryPublisher(client, logger, 4, progress), {
        distribute: inputs.distribute !== undefined,
        // Attestations go up after the images' manifests and before any tag moves.
        beforeTags: (targets) => attachPushed(client, attestations, targets),
      });
      await logger.group('push', () => registry.write(sinkImages));
      stats = registry.stats;
      await saveRecords(regCache, inputs, client, builder.producer().usedLayers(), sinkImages, logger, remoteLayers);
    }
    if (inputs.distribute) {
      await writePartial(resolve(inputs.distribute.partialMap), {
        kind: 'oci-build-partial',
        version: 1,
        buildFile: buildFileHash(await readFile(p.buildFile.file, 'utf8')),
        job: p.variants.map((v) => `${v.name}[${(p.platforms.get(v.name) ?? []).map(formatPlatform).join(',')}]`).join(' '),
        variants: Object.fromEntries(
          results.map((r) => [
            r.variant,
            r.index
              ? {
                  kind: 'platforms' as const,
                  image: recorder.toJSON()[r.variant]!.image,
                  platforms: Object.fromEntries(
                    r.images.map((i) => [
                      formatPlatform(i.platform),
                      {
                        digest: i.manifestDescriptor.digest,
                        size: i.manifestDescriptor.size,
                        mediaType: i.manifestDescriptor.mediaType,
                        totalSize: i.totalSize,
                        ...(i.manifestDescriptor.platform?.variant ? { variant: i.manifestDescriptor.platform.variant } : {}),
                        ...baseOf(i.manifest),
                      },
                    ]),
                  ),
                  // The platform manifests' attestations (this job pushes no index): the merged map lists them.
                  ...onlySubjects(
                    recorder.toJSON()[r.variant]!.attestations,
                    r.images.map((i) => i.manifestDescriptor.digest),
                  ),
                }
              : { kind: 'entry' as const, entry: recorder.toJSON()[r.variant]! },
          ]),
        ),
      });
      logger.info(`partial digest map: ${resolve(inputs.distribute.partialMap)}`);
    }
    let digestMapPath: string | undefined;
    if (inputs.digestMap) {
      digestMapPath = resolve(inputs.digestMap);
      await recorder.write(digestMapPath);
      logger.info(`digest map: ${digestMapPath}`);
    }
    logger.info(
      `done: ${results.length} variant(s), ${results.reduce((n, r) => n + r.images.length, 0)} image(s) in ${formatMs(Date.now() - t0)}`,
    );
    const sbomReads = inventory?.stats.images ? inventory.stats : undefined;
    return {
      digestMap: recorder.toJSON(),
      digests: recorder.digests(),
      variants: results,
      layers,
      stats,
      digestMapPath,
      ...(sbomReads ? { sbom: sbomReads } : {}),
      rootfs,
    };
  } finally {
    walkedSources.clear();
    await client.close();
  }
}

/** The registry's records as the layer cache's second tier, or undefined when there are none to read. */
function registryLayers(
  setting: CacheRegistrySetting,
  inputs: PipelineInputs,
  variants: Plan['variants'],
  client: RegistryClient,
  logger: Logger,
): RegistryLayers | undefined {
  const repos = variants
    .filter((v) => !v.stage && v.image)
    .map((v) => {
      const ref = parseReference(v.image!, { repositoryOnly: true });
      return { registry: ref.registry, repository: ref.repository };
    });
  const locations = readLocations(setting, { push: inputs.push, onActions: Boolean(inputs.git?.eventName), repos });
  if (!locations.length) return undefined;
  const remote = new RegistryLayers(client, locations, (m) => logger.warn(m));
  // Read while the bases resolve (load() never rejects: an unreadable record is a warning).
  void remote.load();
  return remote;
}

/** After a push: the records naming this build's layers that are now in the registry. A failure is a warning. */
async function saveRecords(
  setting: CacheRegistrySetting,
  inputs: PipelineInputs,
  client: RegistryClient,
  used: ReadonlyMap<string, UsedLayer>,
  images: SinkImage[],
  logger: Logger,
  remote: RegistryLayers | undefined,
): Promise<void> {
  const policy = writesRecords(setting, inputs.push, inputs.git?.eventName);
  if (policy.reason) logger.info(policy.reason);
  if (!policy.write || used.size === 0) return;
  const pushed = images.flatMap((s) =>
    s.repo ? [{ repo: s.repo, layers: new Set(s.variant.images.flatMap((i) => i.layers.map((l) => l.descriptor.digest))) }] : [],
  );
  try {
    for (const w of await writeRecords(client, setting, used, pushed, (at) => remote?.readAtStart(at))) {
      logger.info(
        `registry cache: ${w.entries} layer(s) recorded in ${formatRepository(w.at.repo)}:${w.at.tag} (${w.bytes} bytes uploaded)`,
      );
    }
  } catch (e) {
    logger.warn(
      `registry cache: could not write the record (${(e as Error).message}); the images are pushed, the next build on an empty cache rebuilds`,
    );
  }
}
