import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);
import {
  BaseScanner,
  BlobFetcher,
  BlobStore,
  ConfigError,
  DigestMismatchError,
  FileHasher,
  FsView,
  IoError,
  LayerCache,
  MediaType,
  MergeError,
  Pool,
  PrereqError,
  RanAsRoot,
  RegistryClient,
  RegistryError,
  StepError,
  applySettings,
  builtImage,
  builtVariant,
  compressionKeyPart,
  contextFromEnv,
  createSink,
  credentialsFrom,
  describeStep,
  diffKeyParts,
  formatBytes,
  formatMs,
  formatPlatform,
  formatReference,
  formatRepository,
  hashKey,
  hostPlatform,
  isIndexType,
  isManifestType,
  layerCompressionOf,
  listLayer,
  loadEventPayload,
  loadJournal,
  loggerThrough,
  mountKeyParts,
  otherIoError,
  parseCacheRegistry,
  parseOutput,
  parsePlatform,
  parseProvenance,
  parseReference,
  parseSbom,
  parseSecretFlag,
  plan,
  platformMatches,
  progressFor,
  resolveBase,
  resolveOwner,
  runMerge,
  runPipeline,
  runStepKeyParts,
  specFor,
  stepEntries,
  stepKeyParts
} from "./chunk-ALYZCZGE.js";
import "./chunk-L7TZOQJY.js";
import {
  digestHex
} from "./chunk-CJM4TR3Q.js";
import "./chunk-Z3NNVBL6.js";

// src/cli.ts
import { parseArgs as parseArgs3 } from "node:util";
import { homedir as homedir2 } from "node:os";
import { join as join3, resolve as resolve4 } from "node:path";

// src/pull/command.ts
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

// src/pull/errors.ts
var PullError = class extends Error {
  constructor(image, cause, hint) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    const check = hint ?? hintFor(cause, image);
    super(`pull of ${image} failed: ${msg}${check ? `
  check: ${check}` : ""}`, { cause });
    this.image = image;
    this.name = "PullError";
  }
  image;
};
var PullUsageError = class extends Error {
};
var MISSING = ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "NOT_FOUND"];
var DENIED = ["DENIED", "UNAUTHORIZED", "FORBIDDEN"];
function hostOf(image) {
  return image.split("/")[0] ?? image;
}
function hintFor(cause, image) {
  const host = hostOf(image);
  if (cause instanceof DigestMismatchError) {
    return `the registry ${host} (or a proxy on the way) served bytes that do not match their digest; nothing was written. Pull again; if it persists, the image in the registry is corrupt`;
  }
  if (!(cause instanceof RegistryError)) return void 0;
  if (cause.status === 404 || cause.codes.some((c) => MISSING.includes(c))) {
    return /\/blobs\//.test(cause.url) ? `the registry lacks a blob the image's manifest lists: check that ${image} was pushed completely` : `that the tag or digest exists in ${image.replace(/[@:][^/]*$/, "")} (a typo, or an image not pushed yet)`;
  }
  if (cause.status === 401 || cause.status === 403 || cause.codes.some((c) => DENIED.includes(c))) {
    return `the credentials for ${host} (~/.docker/config.json, or OCI_BUILD_REGISTRY=${host} with OCI_BUILD_USERNAME and OCI_BUILD_PASSWORD) and that they may pull ${image}`;
  }
  if (cause.status === void 0 || cause.temporary) return `the network, and that ${host} is reachable and up`;
  return void 0;
}

// src/pull/pull.ts
import { resolve } from "node:path";

// src/pull/blobs.ts
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
var PullBlobs = class {
  constructor(client, store, progress) {
    this.client = client;
    this.store = store;
    this.progress = progress;
  }
  client;
  store;
  progress;
  stats = { downloaded: 0, bytes: 0, local: 0 };
  pending = /* @__PURE__ */ new Map();
  layer(descriptor, diffId, repo, label) {
    const ensure = () => this.ensure(repo, descriptor, label);
    return {
      descriptor,
      diffId,
      createdBy: "base",
      origin: repo,
      open: async () => {
        await ensure();
        return this.store.open(descriptor.digest);
      },
      file: async () => {
        await ensure();
        return this.store.path(descriptor.digest);
      }
    };
  }
  /** Downloads the blob unless the store has it; concurrent callers share one download. */
  ensure(repo, d, label) {
    let p = this.pending.get(d.digest);
    if (!p) {
      p = this.fetch(repo, d, label);
      this.pending.set(d.digest, p);
      p.catch(() => this.pending.delete(d.digest));
    }
    return p;
  }
  async fetch(repo, d, label) {
    if (await this.store.has(d.digest) === d.size) {
      this.stats.local++;
      return;
    }
    const task = this.progress.task(`pull ${label} ${digestHex(d.digest).slice(0, 12)}`, d.size);
    const w = await this.store.create();
    try {
      const body = await this.client.getBlob(repo, d.digest, d.size);
      const counted = new Transform({
        transform(chunk, _enc, cb) {
          task.add(chunk.length);
          cb(null, chunk);
        }
      });
      await pipeline(body, counted, w.stream);
      await w.commit(d.digest);
    } catch (err) {
      task.fail();
      await w.abort();
      throw err;
    }
    this.stats.downloaded++;
    this.stats.bytes += d.size;
    task.done();
  }
};

// src/pull/resolve.ts
var MAX_CONFIG_BYTES = 8 << 20;
async function resolveTarget(client, blobs, t, platform) {
  const repo = { registry: t.reference.registry, repository: t.reference.repository };
  try {
    const top = await client.getManifest(repo, t.reference.digest ?? t.reference.tag ?? "latest");
    const doc = JSON.parse(top.bytes.toString("utf8"));
    const descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    if (!(isIndexType(top.mediaType) || "manifests" in doc)) {
      const image = await imageOf(client, blobs, t, repo, descriptor, top.bytes);
      if (platform && platform !== "all" && !platformMatches(platform, image.platform)) {
        throw new PullError(
          t.shown,
          `it is a single ${formatPlatform(image.platform)} image, not ${formatPlatform(platform)}`,
          "the --platform given, or pull without it"
        );
      }
      return builtVariant(t.name, [image]);
    }
    const index = doc;
    if (platform === "all") {
      const images = await Promise.all(
        index.manifests.map(async (d) => {
          if (!isManifestType(d.mediaType))
            throw new PullError(
              t.shown,
              `its index lists ${d.digest} of media type ${d.mediaType}, which pull cannot copy`,
              "pick one platform with --platform os/arch"
            );
          const m2 = await client.getManifest(repo, d.digest);
          return await imageOf(client, blobs, t, repo, { ...d, mediaType: m2.mediaType }, m2.bytes);
        })
      );
      return builtVariant(t.name, images, { bytes: top.bytes, descriptor });
    }
    const chosen = choosePlatform(t.shown, index, platform ?? hostPlatform());
    const m = await client.getManifest(repo, chosen.digest);
    const tagged = {
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.bytes.length,
      ...chosen.platform ? { platform: chosen.platform } : {}
    };
    return builtVariant(t.name, [await imageOf(client, blobs, t, repo, tagged, m.bytes)]);
  } catch (err) {
    throw err instanceof PullError ? err : new PullError(t.shown, err);
  }
}
function isAttestation(d) {
  return d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" || d.platform?.os === "unknown" && d.platform?.architecture === "unknown";
}
function choosePlatform(shown2, index, platform) {
  const candidates = index.manifests.filter((m) => !isAttestation(m) && isManifestType(m.mediaType));
  const match = candidates.find((m) => platformMatches(platform, m.platform));
  if (match) return match;
  const have = candidates.map((m) => m.platform ? formatPlatform(m.platform) : "?").join(", ") || "none";
  throw new PullError(
    shown2,
    `its index has no manifest for ${formatPlatform(platform)} (it has: ${have})`,
    `--platform: pass one of ${have}, or --platform all to keep the whole index`
  );
}
async function imageOf(client, blobs, t, repo, d, bytes) {
  const manifest = JSON.parse(bytes.toString("utf8"));
  if (!isManifestType(d.mediaType) || !manifest.config || !Array.isArray(manifest.layers)) {
    throw new PullError(
      t.shown,
      `unsupported manifest media type "${d.mediaType}"`,
      "that the reference names an OCI or Docker schema 2 image"
    );
  }
  const configBytes = await readSmall(await client.getBlob(repo, manifest.config.digest, manifest.config.size), manifest.config.size);
  let config;
  try {
    config = JSON.parse(configBytes.toString("utf8"));
  } catch {
    throw new PullError(t.shown, `its config ${manifest.config.digest} is not JSON`);
  }
  const diffIds = config.rootfs?.diff_ids ?? [];
  const label = repo.repository.split("/").pop();
  const layers = manifest.layers.map((l, i) => blobs.layer(l, diffIds[i] ?? l.digest, repo, label));
  const platform = { os: config.os, architecture: config.architecture, ...config.variant ? { variant: config.variant } : {} };
  const configDescriptor = { ...manifest.config, mediaType: manifest.config.mediaType ?? MediaType.OciConfig };
  return builtImage({
    variant: t.name,
    platform,
    config,
    configBytes,
    configDescriptor,
    layers,
    manifest,
    manifestBytes: bytes,
    // The platform as the index lists it (a chosen platform's manifest is what gets tagged).
    manifestDescriptor: { mediaType: d.mediaType, digest: d.digest, size: bytes.length, ...d.platform ? { platform: d.platform } : {} }
  });
}
async function readSmall(stream, size) {
  if (size > MAX_CONFIG_BYTES) throw new Error(`the config is ${size} bytes, more than the ${MAX_CONFIG_BYTES} pull reads`);
  const parts = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

// src/pull/pull.ts
async function runPull(opts, logger, progress) {
  const t0 = Date.now();
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: opts.credentials }),
    logger,
    ...opts.retry ? { retry: opts.retry } : {}
  });
  const blobs = new PullBlobs(client, new BlobStore(resolve(opts.workDir, "blobs")), progress);
  try {
    const variants = await Promise.all(opts.targets.map((t) => resolveTarget(client, blobs, t, opts.platform)));
    await downloadAll(variants, opts.targets, opts.concurrency ?? 4);
    const s = blobs.stats;
    logger.info(
      `pull: ${variants.length} image(s): ${s.downloaded} blob(s) downloaded (${formatBytes(s.bytes)}), ${s.local} already local, in ${formatMs(Date.now() - t0)}`
    );
    const images = variants.map((v, i) => {
      const t = opts.targets[i];
      return { variant: v, repo: { registry: t.reference.registry, repository: t.reference.repository }, image: t.image, tags: t.tags };
    });
    for (const spec of opts.outputs) {
      const sink = createSink(spec);
      const t = Date.now();
      await sink.write(images);
      logger.info(`output: ${sink.description} (${images.length} image(s)) in ${formatMs(Date.now() - t)}`);
    }
    const entries = Object.fromEntries(variants.map((v, i) => [v.variant, entryOf(v, opts.targets[i])]));
    return { entries, stats: blobs.stats };
  } finally {
    await client.close();
  }
}
async function downloadAll(variants, targets, concurrency) {
  const pool = new Pool(concurrency);
  let failed = false;
  const jobs = variants.flatMap(
    (v, i) => v.images.flatMap(
      (img) => img.layers.map(
        (l) => pool.run(async () => {
          if (failed) return;
          try {
            await l.file();
          } catch (e) {
            failed = true;
            throw new PullError(targets[i].shown, e);
          }
        })
      )
    )
  );
  const results = await Promise.allSettled(jobs);
  const first = results.find((r) => r.status === "rejected");
  if (first) throw first.reason;
}
function entryOf(v, t) {
  return {
    image: t.image,
    digest: v.tagged.digest,
    ref: `${t.image}@${v.tagged.digest}`,
    mediaType: v.tagged.mediaType,
    size: v.totalSize,
    ...v.index ? { platforms: Object.fromEntries(v.images.map((i) => [formatPlatform(i.platform), i.manifestDescriptor.digest])) } : {}
  };
}

// src/pull/targets.ts
import { readFile } from "node:fs/promises";
function targetFromReference(input) {
  let reference;
  try {
    reference = parseReference(input);
  } catch (e) {
    throw new PullUsageError(e.message);
  }
  if (!reference.tag && !reference.digest) reference = { ...reference, tag: "latest" };
  const image = formatRepository(reference);
  const name = reference.tag ?? reference.repository.split("/").pop();
  return { name, reference, image, tags: reference.tag ? [reference.tag] : [], shown: formatReference(reference) };
}
async function targetsFromDigestMap(file, variants) {
  let doc;
  try {
    doc = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    throw new PullUsageError(
      `cannot read the digest map ${file}: ${e.code ?? e.message}; give the file build --digest-map wrote`
    );
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc))
    throw new PullUsageError(`${file} is not a digest map (a JSON object of variant names)`);
  const entries = doc;
  const missing = variants.filter((v) => !(v in entries));
  if (missing.length)
    throw new PullUsageError(`${file} has no variant ${missing.join(", ")} (it has: ${Object.keys(entries).join(", ") || "none"})`);
  const chosen = variants.length ? variants : Object.keys(entries);
  return chosen.map((name) => {
    const e = entries[name];
    const given = typeof e.ref === "string" ? e.ref : typeof e.image === "string" && typeof e.digest === "string" ? `${e.image}@${e.digest}` : void 0;
    if (!given) throw new PullUsageError(`${file}: variant ${name} has neither "ref" nor "image" and "digest"`);
    let reference;
    try {
      reference = parseReference(given);
    } catch (err) {
      throw new PullUsageError(`${file}: variant ${name}: ${err.message}`);
    }
    const image = formatRepository(reference);
    const tags = Array.isArray(e.tags) ? e.tags.filter((x) => typeof x === "string").map((x) => x.slice(x.lastIndexOf(":") + 1)) : [];
    return { name, reference, image, tags, shown: `${image}@${reference.digest ?? reference.tag} (variant ${name})` };
  });
}

// src/pull/command.ts
var PULL_USAGE = `  oci-build pull REF|--digest-map FILE [--variant V]... --output oci:DIR|oci-archive:FILE|docker-archive:FILE...
                  [--platform os/arch|all] [--cache-dir DIR] [--verbose]
                  fetch images (by digest from a digest map), verified, into an OCI layout or an archive`;
function parse(args) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      "digest-map": { type: "string" },
      variant: { type: "string", multiple: true, default: [] },
      output: { type: "string", short: "o", multiple: true, default: [] },
      platform: { type: "string" },
      "cache-dir": { type: "string" },
      verbose: { type: "boolean", short: "v", default: false },
      help: { type: "boolean", short: "h", default: false }
    }
  });
}
async function pullCommand(args, env, usage) {
  const bad = (msg) => {
    process.stderr.write(`oci-build: ${msg}

${usage}
`);
    return 2;
  };
  let parsed;
  try {
    parsed = parse(args);
  } catch (e) {
    return bad(e.message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${usage}
`);
    return 0;
  }
  const variants = values.variant.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  if (positionals.length === 1 === (values["digest-map"] !== void 0) || positionals.length > 1)
    return bad("pull takes one image reference, or --digest-map FILE");
  if (variants.length && !values["digest-map"]) return bad("--variant picks variants of a --digest-map");
  if (!values.output.length) return bad("pull needs --output (oci:DIR, oci-archive:FILE or docker-archive:FILE)");
  let outputs;
  let platform;
  try {
    outputs = values.output.map(parseOutput);
    platform = values.platform === "all" ? "all" : values.platform ? parsePlatform(values.platform) : void 0;
  } catch (e) {
    return bad(e.message);
  }
  const progress = progressFor(process.stderr, env);
  const logger = loggerThrough(progress, values.verbose);
  try {
    const targets = values["digest-map"] ? await targetsFromDigestMap(values["digest-map"], variants) : [targetFromReference(positionals[0])];
    const { entries } = await runPull(
      {
        targets,
        outputs,
        platform,
        credentials: credentialsFromEnv(env),
        workDir: values["cache-dir"] ?? join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "oci-build")
      },
      logger,
      progress
    );
    progress.stop();
    process.stdout.write(`${JSON.stringify(entries, null, 2)}
`);
    return 0;
  } catch (err) {
    progress.stop();
    if (err instanceof PullUsageError) return bad(err.message);
    const shown2 = err instanceof PullError ? err.message : `pull failed: ${err.message ?? err}`;
    process.stderr.write(`oci-build: error: ${shown2}
`);
    if (values.verbose && err.stack) process.stderr.write(`${err.stack}
`);
    return 1;
  }
}
function credentialsFromEnv(env) {
  if (!env.OCI_BUILD_REGISTRY || !env.OCI_BUILD_USERNAME || !env.OCI_BUILD_PASSWORD) return {};
  return { [env.OCI_BUILD_REGISTRY]: { username: env.OCI_BUILD_USERNAME, password: env.OCI_BUILD_PASSWORD } };
}

// src/plan/explain.ts
import { resolve as resolve2 } from "node:path";

// src/plan/explain-copyfrom.ts
function shown(field, json2) {
  if (json2 === void 0 || json2 === "null") return "(default)";
  return field === "step.mode" ? Number(json2).toString(8).padStart(4, "0") : json2;
}
var withoutEntries = (parts) => Object.fromEntries(Object.entries(parts).filter(([k]) => k !== "entries"));
function explainCopyFrom(w) {
  const rebuilt = (reasons, changes2 = []) => ({ decision: "rebuilt", reasons, changes: changes2 });
  if (w.fresh) return rebuilt(["--rebuild-from: the layer cache is ignored from this step on (and in the variants built from this one)"]);
  if (!w.cacheOn) return rebuilt(["the layer cache is off (--no-cache)"]);
  if (!w.prev) return rebuilt(["no earlier build of this step is recorded in the cache directory"]);
  const changes = diffKeyParts(withoutEntries(w.prev.parts), w.options);
  if (changes.length)
    return rebuilt(
      changes.map(
        (c) => `${c.field.startsWith("step.") ? `step option ${c.field.slice(5)}` : c.field}: ${shown(c.field, c.was)} -> ${shown(c.field, c.now)}`
      ),
      changes
    );
  if (!w.source.known) {
    const at = w.source.firstRebuilt;
    const which = at ? `layer ${at.layer + 1}, ${at.label}, is rebuilt` : "it has layers that are rebuilt";
    return {
      decision: "unknown",
      reasons: [`depends on variant ${w.step.from}'s files: ${which}, so what this step copies is known only once it is built`],
      changes: []
    };
  }
  if (w.ownRebuilt)
    return {
      decision: "unknown",
      reasons: [
        `layer ${w.ownRebuilt.layer + 1}, ${w.ownRebuilt.label}, is rebuilt: the directories this copy creates are known only once it is built`
      ],
      changes: []
    };
  if (!w.prevCached) return rebuilt(["the layer recorded under this key is gone from the cache (its blob was removed)"]);
  return { decision: "cached", reasons: [], changes: [] };
}

// src/plan/explain-why.ts
import { relative } from "node:path";
function whyRebuilt(w) {
  if (w.fresh)
    return {
      reasons: ["--rebuild-from: the layer cache is ignored from this step on (and in the variants built from this one)"],
      changes: []
    };
  if (!w.cacheOn) return { reasons: ["the layer cache is off (--no-cache)"], changes: [] };
  if (w.step.kind === "copy" && w.step.from !== void 0)
    return { reasons: [`copies from variant ${w.step.from}'s file system, which is known only once it is built`], changes: [] };
  if (!w.parts) {
    const r = w.firstRebuilt ? `layer ${w.firstRebuilt.layer + 1}, ${w.firstRebuilt.label}, is ${w.firstRebuilt.unknown ? "known only when built" : "rebuilt, so this command starts from another file system"}` : "the image this variant starts from has rebuilt layers, so this command starts from another file system";
    return { reasons: [r], changes: [] };
  }
  if (!w.prev) return { reasons: ["no earlier build of this step is recorded in the cache directory"], changes: [] };
  const changes = diffKeyParts(w.prev.parts, w.parts);
  if (!changes.length) return { reasons: ["the layer recorded under this key is gone from the cache (its blob was removed)"], changes };
  return { reasons: [...new Set(changes.map((c) => describe(c, w)))], changes };
}
function describe(c, w) {
  const entry = /^entries\[(.+)\](?:\.(\w+))?$/.exec(c.field);
  if (entry) {
    const [, path, what] = entry;
    const host = w.hostPaths.get(path);
    const name = host ? `${relative(w.context, host)} (${path})` : path;
    if (c.was === void 0 && !what) return `${name} is new in the layer`;
    if (c.now === void 0 && !what) return `${path} is no longer in the layer`;
    if (what === "content" || what === "size") return `${name} changed`;
    if (what === "mode") return `mode of ${path}: ${octal(c.was)} -> ${octal(c.now)}`;
    if (what === "uid" || what === "gid") return `owner of ${path} changed (${what} ${c.was} -> ${c.now})`;
    if (c.was === void 0) return `${name} is new in the layer`;
    if (c.now === void 0) return `${path} is no longer in the layer`;
    return `${what} of ${path}: ${c.was} -> ${c.now}`;
  }
  const parent = /^parent\[(\d+)\]$/.exec(c.field);
  if (parent || c.field === "parent.length") {
    const i = parent ? Number(parent[1]) : w.inherited;
    const { start, previousStart, layers } = w.root;
    if (i < layers && previousStart) {
      if (previousStart.base !== start.base) return `base image changed: ${previousStart.base ?? "?"} -> ${start.base}`;
      if (previousStart.digest !== start.digest)
        return `base image ${start.base} moved: ${previousStart.digest ?? "(none)"} -> ${start.digest ?? "(none)"}`;
    }
    if (i < w.inherited)
      return w.start.from ? `layer ${i + 1}, of variant ${w.start.from} it starts from, changed` : `base layer ${i + 1} changed`;
    return `layer ${i + 1} before it changed, so this command starts from another file system`;
  }
  if (c.field.startsWith("step.")) return `step option ${c.field.slice(5)}: ${c.was ?? "(none)"} -> ${c.now ?? "(none)"}`;
  if (c.field.startsWith("image.")) return `the starting image's ${c.field.slice(6)} changed: ${c.was ?? "(none)"} -> ${c.now ?? "(none)"}`;
  if (c.field.startsWith("variantEnv")) return `the variant's env changed (${c.field})`;
  return `${c.field}: ${c.was ?? "(none)"} -> ${c.now ?? "(none)"}`;
}
function octal(json2) {
  return json2 === void 0 || json2 === "null" ? "(default)" : Number(json2).toString(8).padStart(4, "0");
}
function formatExplained(x) {
  const out = [`build file: ${x.buildFile}`, `layer cache: ${x.cache ?? "off"}`];
  for (const v of x.variants) {
    const from = v.start.from ? `from ${v.start.from}` : `base ${v.start.base}${v.start.digest ? `@${v.start.digest}` : ""}${v.start.overridden ? ` (--base; the build file says ${v.start.overridden})` : ""}`;
    out.push("", `variant ${v.variant}${v.stage ? " (stage)" : ""} ${v.platform}: ${from}, ${v.inheritedLayers} inherited layer(s)`);
    for (const l of v.layers) {
      out.push(`  layer ${l.layer} (step ${l.step}): ${l.createdBy}: ${l.decision}${l.digest ? ` ${l.digest.slice(0, 19)}` : ""}`);
      for (const r of l.reasons) out.push(`      because ${r}`);
    }
  }
  const all = x.variants.flatMap((v) => v.layers);
  const count = (d) => all.filter((l) => l.decision === d).length;
  out.push("", `${count("cached")} cached, ${count("rebuilt") + count("shared")} to build, ${count("unknown")} known only when built`);
  return `${out.join("\n")}
`;
}

// src/plan/explain.ts
async function explain(inputs) {
  const p = await plan(inputs);
  const dir = resolve2(inputs.workDir);
  const store = new BlobStore(resolve2(dir, "blobs"));
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: inputs.credentials, dockerConfigPath: inputs.dockerConfig ? void 0 : null })
  });
  const cacheOn = inputs.cache !== false;
  const sim = new Simulator(p, inputs, dir, store, client, cacheOn);
  try {
    const variants = [];
    for (const v of p.variants) for (const platform of p.platforms.get(v.name) ?? []) variants.push(await sim.variant(v, platform));
    return { buildFile: p.buildFile.file, cache: cacheOn ? dir : null, variants };
  } finally {
    await client.close();
  }
}
var Simulator = class {
  constructor(p, inputs, dir, store, client, cacheOn) {
    this.p = p;
    this.inputs = inputs;
    this.dir = dir;
    this.store = store;
    this.client = client;
    this.cache = cacheOn ? new LayerCache(dir, store) : void 0;
    this.hasher = new FileHasher(dir);
    this.scanner = new BaseScanner(new BlobFetcher(client, store), cacheOn ? dir : void 0);
    this.mtime = new Date((inputs.sourceDateEpoch ?? 0) * 1e3);
  }
  p;
  inputs;
  dir;
  store;
  client;
  states = /* @__PURE__ */ new Map();
  cache;
  hasher;
  scanner;
  /** Keys this run will build, so a second variant with the same layer gets it shared. */
  building = /* @__PURE__ */ new Set();
  mtime;
  async variant(variant, platform) {
    const plat = formatPlatform(platform);
    const v = specFor(variant, plat);
    const journal = this.cache ? await loadJournal(this.dir, v.name, plat) : void 0;
    let st;
    let start;
    if (v.from !== void 0) {
      const parent = this.states.get(`${v.from}|${plat}`);
      const pv = specFor(this.p.variants.find((x) => x.name === v.from), plat);
      st = {
        ...parent,
        fs: parent.fs.clone(),
        diffIds: [...parent.diffIds],
        config: { ...parent.config, config: applySettings(parent.config.config, pv) }
      };
      start = { from: v.from };
    } else {
      const base = await resolveBase(this.client, v.base ?? "scratch", platform);
      const scan = this.needsBaseFiles(v) ? await this.scanner.scan(base) : { fs: new FsView(), owners: {} };
      start = {
        base: base.name,
        ...base.digest ? { digest: base.digest } : {},
        ...this.p.baseOverridden.has(v.name) ? { overridden: this.p.baseOverridden.get(v.name) } : {}
      };
      st = {
        fs: scan.fs.clone(),
        owners: scan.owners,
        config: base.config,
        diffIds: [...base.config.rootfs.diff_ids],
        root: { start, ...journal ? { previousStart: journal.start } : {}, layers: base.layers.length }
      };
    }
    const inherited = st.diffIds.length;
    const layers = [];
    const freshFrom = this.p.rebuildFrom.get(v.name);
    for (const [i, step] of v.steps.entries()) {
      const fresh = freshFrom !== void 0 && i >= freshFrom;
      const e = await this.step(v, plat, step, i, st, fresh, journal, start);
      layers.push(e);
      if (e.decision !== "cached" && !st.firstRebuilt)
        st.firstRebuilt = {
          layer: inherited + i,
          label: `${v.name} step ${i + 1} (${describeStep(step)})`,
          unknown: e.decision === "unknown"
        };
    }
    this.states.set(`${v.name}|${plat}`, st);
    return {
      variant: v.name,
      platform: plat,
      stage: v.stage === true,
      start,
      ...journal?.start ? { previousStart: journal.start } : {},
      inheritedLayers: inherited,
      layers
    };
  }
  /** A RUN's mount key parts as the build makes them; null while a bind's source variant has layers that are rebuilt. */
  /** Another variant's state as a step of a `plat` build sees it (a fixed-platform variant has one). */
  stateOf(name, plat) {
    const fixed = this.p.variants.find((x) => x.name === name)?.fixedPlatform;
    return this.states.get(`${name}|${fixed ?? plat}`);
  }
  async bindKeyParts(step, plat) {
    let known = true;
    const parts = await mountKeyParts(step, {
      context: this.p.buildFile.context,
      variantLayers: async (name) => {
        const ids = this.stateOf(name, plat)?.diffIds ?? [void 0];
        if (ids.includes(void 0)) known = false;
        return ids.filter((d) => d !== void 0);
      }
    });
    return known ? parts : null;
  }
  async step(v, plat, step, i, st, fresh, journal, start) {
    const at = { step: i + 1, layer: st.diffIds.length + 1, createdBy: describeStep(step) };
    const prev = journal?.steps[String(i)];
    let parts;
    let entries;
    const hostPaths = /* @__PURE__ */ new Map();
    if (step.kind === "run") {
      const mounts = step.mounts?.some((m) => m.type === "bind") ? await this.bindKeyParts(step, plat) : step.mounts;
      if (!st.diffIds.includes(void 0) && mounts !== null)
        parts = {
          ...runStepKeyParts(step, st.diffIds, plat, st.config, v, this.inputs.sourceDateEpoch, mounts),
          ...compressionKeyPart(layerCompressionOf(this.inputs)),
          mtime: this.mtime.getTime() / 1e3
        };
    } else if (step.kind === "copy" && step.from !== void 0) {
      return await this.copyFrom(plat, step, st, fresh, prev, at);
    } else {
      try {
        entries = await stepEntries(step, {
          context: this.p.buildFile.context,
          platform: plat,
          fs: st.fs,
          resolveOwner: async (o) => resolveOwner(o, st.owners.passwd, st.owners.group)
        });
      } catch (err) {
        if (!st.firstRebuilt) throw err;
        st.diffIds.push(void 0);
        const reason = `its entries depend on what layer ${st.firstRebuilt.layer + 1}, ${st.firstRebuilt.label}, leaves (${err.message})`;
        return {
          ...at,
          decision: prev ? "unknown" : "rebuilt",
          reasons: prev ? [reason] : ["no earlier build of this step is recorded in the cache directory"],
          changes: []
        };
      }
      if (step.kind === "dir" && entries.length === 0) return { ...at, decision: "cached", reasons: [], changes: [] };
      const keyed = [];
      for (const e of entries) {
        if (e.type === "file" && e.hostPath) {
          hostPaths.set(e.path, e.hostPath);
          keyed.push({ ...e, contentHash: await this.hasher.hash(e.hostPath) });
        } else keyed.push(e);
      }
      parts = stepKeyParts(step, keyed, { mtime: this.mtime, compression: layerCompressionOf(this.inputs) });
    }
    const key = parts ? hashKey(parts) : void 0;
    const hit = key && this.cache && !fresh ? await this.cache.get(key) : void 0;
    if (entries) st.fs.apply(entries);
    else await this.applyLayer(st, hit ?? (prev ? await this.cache?.get(prev.key) : void 0));
    st.diffIds.push(hit?.diffId);
    if (hit) return { ...at, decision: "cached", reasons: [], changes: [], key, digest: hit.descriptor.digest };
    const shared = key !== void 0 && this.building.has(key);
    if (key) this.building.add(key);
    const why = whyRebuilt({
      step,
      fresh,
      cacheOn: this.cache !== void 0,
      prev,
      parts,
      start,
      root: st.root,
      firstRebuilt: st.firstRebuilt,
      inherited: st.diffIds.length - 1 - i,
      hostPaths,
      context: this.p.buildFile.context
    });
    return {
      ...at,
      // A command on top of a layer that is rebuilt starts from new bytes; on top of one that is
      // not knowable (copy: from:), so is its own fate.
      decision: parts ? shared ? "shared" : "rebuilt" : step.kind === "run" && !st.firstRebuilt?.unknown ? "rebuilt" : "unknown",
      ...why,
      ...key ? { key } : {}
    };
  }
  async copyFrom(plat, step, st, fresh, prev, at) {
    const src = this.stateOf(step.from, plat);
    const prevLayer = prev && this.cache ? await this.cache.get(prev.key) : void 0;
    const { entries: _, ...options } = stepKeyParts(step, [], { mtime: this.mtime, compression: layerCompressionOf(this.inputs) });
    const r = explainCopyFrom({
      step,
      fresh,
      cacheOn: this.cache !== void 0,
      prev,
      options,
      source: {
        known: src !== void 0 && !src.diffIds.includes(void 0),
        ...src?.firstRebuilt ? { firstRebuilt: src.firstRebuilt } : {}
      },
      ownRebuilt: st.diffIds.includes(void 0) ? st.firstRebuilt : void 0,
      prevCached: prevLayer !== void 0
    });
    await this.applyLayer(st, prevLayer);
    const cached = r.decision === "cached" && prev && prevLayer;
    st.diffIds.push(cached ? prevLayer.diffId : void 0);
    return { ...at, ...r, ...cached ? { key: prev.key, digest: prevLayer.descriptor.digest } : {} };
  }
  /** A variant, or one built from it, has steps whose layer entries depend on the base's files (not run: steps). */
  needsBaseFiles(v) {
    const uses = (x) => x.steps.some((s) => s.kind === "file" || s.kind === "dir" || s.kind === "copy" && s.from === void 0);
    return uses(v) || this.p.variants.some((c) => c.from === v.name && this.needsBaseFiles(c));
  }
  async applyLayer(st, layer) {
    if (!layer) return;
    const listing = await listLayer(this.store.layer(layer.descriptor, layer.diffId, "explain"));
    for (const d of listing.opaque) st.fs.clear(d);
    st.fs.apply(listing.entries);
    for (const d of listing.deleted) st.fs.remove(d);
    if (listing.files.passwd !== void 0 || listing.files.group !== void 0) st.owners = { ...st.owners, ...listing.files };
  }
};

// src/export/command.ts
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join as join2, relative as relative3, resolve as resolve3 } from "node:path";
import { parseArgs as parseArgs2 } from "node:util";

// src/export/dockerfile.ts
import { basename, relative as relative2 } from "node:path";

// src/export/instructions.ts
var json = (args) => JSON.stringify(args);
function quoteArg(value) {
  if (/^[A-Za-z0-9_./:@%+,-]+$/.test(value)) return value;
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`).replace(/\n/g, "\\n")}"`;
}
var shellQuote = (value) => `'${value.replace(/'/g, `'\\''`)}'`;
function exportConfig(v) {
  const out = [];
  const labels = Object.entries(v.labels);
  if (labels.length) out.push(`LABEL ${labels.map(([k, x]) => `${quoteArg(k)}=${quoteArg(x)}`).join(" ")}`);
  if (v.expose.length) out.push(`EXPOSE ${v.expose.join(" ")}`);
  if (v.volumes.length) out.push(`VOLUME ${json(v.volumes)}`);
  if (v.stopSignal) out.push(`STOPSIGNAL ${v.stopSignal}`);
  if (v.entrypoint) out.push(`ENTRYPOINT ${json(v.entrypoint)}`);
  if (v.cmd) out.push(`CMD ${json(v.cmd)}`);
  return out;
}

// src/export/dockerfile.ts
var EXPORT_DIR = ".oci-build/export";
var ExportError = class extends Error {
  constructor(message) {
    super(message);
    this.name = "ExportError";
  }
};
var where = (s) => `${relative2(process.cwd(), s.pos.file) || s.pos.file}:${s.pos.line}`;
function unsupported(v, i, s, why, fix) {
  return new ExportError(`${where(s)}: variant ${v.name} step ${i + 1} (${describeStep(s)}): ${why} (fix: ${fix})`);
}
var StageState = class {
  constructor(start) {
    this.start = start;
  }
  start;
  current = {};
  /** Instructions that make USER and WORKDIR `want` (undefined: as the stage started). */
  async switchTo(want) {
    const out = [];
    const user = want.user ?? (this.current.user === void 0 ? void 0 : (await this.start()).user);
    if (user !== void 0 && user !== this.current.user) {
      out.push(`USER ${user || "root"}`);
      this.current.user = user;
    }
    const workdir = want.workdir ?? (this.current.workdir === void 0 ? void 0 : (await this.start()).workdir);
    if (workdir !== void 0 && workdir !== this.current.workdir) {
      out.push(`WORKDIR ${quoteArg(workdir || "/")}`);
      this.current.workdir = workdir;
    }
    return out;
  }
};
function copyInstruction(v, i, s) {
  if (s.platformSources || s.sources.some((x) => x.perPlatform))
    throw unsupported(
      v,
      i,
      s,
      "a source per platform (${arch}, ${os}) has no Dockerfile form",
      "one variant per platform, or TARGETARCH in the Dockerfile by hand"
    );
  if (s.extract || s.dockerRules)
    throw unsupported(v, i, s, "a step made by the Dockerfile front end", "export the build file, not a Dockerfile");
  const flags = [
    s.from !== void 0 ? `--from=${s.from}` : "",
    s.owner ? `--chown=${s.owner}` : "",
    s.mode !== void 0 ? `--chmod=${s.mode.toString(8).padStart(4, "0")}` : ""
  ].filter(Boolean);
  const args = [...s.sources.map((x) => x.pattern), s.to];
  if (args.some((a) => /\s|"/.test(a))) return `COPY ${[...flags, json(args)].join(" ")}`;
  return `COPY ${[...flags, ...args].join(" ")}`;
}
function fileInstruction(v, i, s, files) {
  const path = `${EXPORT_DIR}/${v.name}/step-${i + 1}`;
  files.push({ path, content: s.content });
  const flags = [s.owner ? `--chown=${s.owner}` : "", `--chmod=${(s.mode ?? 420).toString(8).padStart(4, "0")}`].filter(Boolean);
  return `COPY ${[...flags, .../\s|"/.test(s.path) ? [json([path, s.path])] : [path, s.path]].join(" ")}`;
}
function runInstruction(s) {
  const flags = "";
  const exports = Object.entries(s.env).map(([k, x]) => `export ${k}=${shellQuote(x)}`);
  if (Array.isArray(s.command)) {
    if (!exports.length) return `RUN ${flags}${json(s.command)}`;
    return `RUN ${flags}${json(["/bin/sh", "-c", `${exports.join("; ")}; exec "$@"`, "sh", ...s.command])}`;
  }
  const plain = !s.shell && !exports.length && !s.command.includes("\n") && !s.command.trimEnd().endsWith("\\");
  if (plain) return `RUN ${flags}${s.command}`;
  const script = [...exports, s.command].join("\n");
  return `RUN ${flags}${json([...s.shell ?? ["/bin/sh", "-c"], script])}`;
}
function checkVariant(v) {
  if (!/^[a-z][a-z0-9._-]*$/.test(v.name))
    throw new ExportError(`${where(v)}: variant ${v.name}: a Dockerfile stage name must start with a letter (fix: rename the variant)`);
  if (Object.keys(v.annotations).length)
    throw new ExportError(
      `${where(v)}: variant ${v.name}: annotations (${Object.keys(v.annotations).join(", ")}) are manifest annotations, which a Dockerfile cannot set (fix: remove them, or pass them to the docker build command, e.g. buildx --annotation)`
    );
  if (v.healthcheck || v.onBuild || v.author)
    throw new ExportError(`${where(v)}: variant ${v.name} comes from a Dockerfile (fix: use that Dockerfile)`);
}
async function exportStage(v, o, files, starts) {
  checkVariant(v);
  const start = v.from !== void 0 ? starts.get(v.from) : async () => v.base === "scratch" ? { user: "", workdir: "" } : await o.baseConfig(v.base);
  let memo;
  const startOnce = () => memo ??= start();
  starts.set(v.name, async () => ({ user: v.user ?? (await startOnce()).user, workdir: v.workdir ?? (await startOnce()).workdir }));
  const state = new StageState(startOnce);
  const lines = [
    `# variant ${v.name} (${basename(v.pos.file)}:${v.pos.line})${v.stage ? ": a stage, never pushed" : ""}`,
    `FROM ${v.from ?? v.base} AS ${v.name}`
  ];
  if (Object.keys(v.env).length)
    lines.push(
      `ENV ${Object.entries(v.env).map(([k, x]) => `${k}=${quoteArg(x)}`).join(" ")}`
    );
  for (const [i, s] of v.steps.entries()) {
    if (s.kind === "copy") lines.push(copyInstruction(v, i, s));
    else if (s.kind === "file") lines.push(fileInstruction(v, i, s, files));
    else if (s.kind === "run") {
      lines.push(...await state.switchTo({ ...s.user ? { user: s.user } : {}, ...s.workdir ? { workdir: s.workdir } : {} }));
      if (!s.network) lines.push("# network: false (no network for this step: BuildKit RUN --network=none, buildah bud --network none)");
      lines.push(runInstruction(s));
    } else throw unsupported(v, i, s, "a directory step comes from a Dockerfile WORKDIR", "export the build file, not a Dockerfile");
  }
  lines.push(...await state.switchTo({ ...v.user ? { user: v.user } : {}, ...v.workdir ? { workdir: v.workdir } : {} }));
  lines.push(...exportConfig(v));
  return lines.join("\n");
}
async function exportDockerfile(variants, o) {
  const files = [];
  const starts = /* @__PURE__ */ new Map();
  const stages = [];
  for (const v of variants) stages.push(await exportStage(v, o, files, starts));
  const header = [
    `# Exported by oci-build from ${o.buildFile}. Build it with the build file's directory as the context:`,
    `#   docker build -f Dockerfile .   or   buildah bud -f Dockerfile .`,
    ...files.length ? [`# COPY reads the file: steps' contents from ${EXPORT_DIR}/ there (no heredocs: buildah 1.28 has none).`] : []
  ];
  return { text: `${[header.join("\n"), ...stages].join("\n\n")}
`, files, stages: variants.map((v) => v.name) };
}

// src/export/command.ts
var DOCKERFILE_USAGE = `  oci-build dockerfile --config FILE [--variant V] [--base [VARIANT=]REF]... [-o FILE]
                  write a Dockerfile equivalent to the variant (its stages included) for docker build / buildah bud`;
function parse2(args) {
  return parseArgs2({
    args,
    strict: true,
    options: {
      config: { type: "string", short: "c", default: "oci-build.yml" },
      variant: { type: "string", multiple: true, default: [] },
      base: { type: "string", multiple: true, default: [] },
      output: { type: "string", short: "o" },
      help: { type: "boolean", short: "h", default: false }
    }
  });
}
function credentialsFromEnv2(env) {
  if (!env.OCI_BUILD_REGISTRY || !env.OCI_BUILD_USERNAME || !env.OCI_BUILD_PASSWORD) return {};
  return { [env.OCI_BUILD_REGISTRY]: { username: env.OCI_BUILD_USERNAME, password: env.OCI_BUILD_PASSWORD } };
}
async function dockerfileCommand(args, env, usage) {
  let values;
  try {
    ({ values } = parse2(args));
  } catch (e) {
    process.stderr.write(`oci-build: ${e.message}

${usage}
`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${usage}
`);
    return 0;
  }
  const client = new RegistryClient({ credentials: credentialsFrom({ explicit: credentialsFromEnv2(env) }) });
  try {
    const p = await plan({
      config: values.config,
      variants: values.variant.flatMap((v) => v.split(",")).filter(Boolean),
      push: false,
      tags: [],
      outputs: [],
      credentials: {},
      dockerConfig: false,
      platforms: [],
      gzipLevel: 1,
      workDir: "",
      env,
      base: values.base
    });
    const baseConfig = async (ref) => {
      const base = await resolveBase(client, ref, hostPlatform());
      return { user: base.config.config?.User ?? "", workdir: base.config.config?.WorkingDir ?? "" };
    };
    const x = await exportDockerfile(p.variants, { buildFile: relative3(process.cwd(), p.buildFile.file) || p.buildFile.file, baseConfig });
    const context = p.buildFile.context;
    for (const f of x.files) {
      const at = join2(context, f.path);
      await mkdir(dirname(at), { recursive: true });
      await writeFile(at, f.content, { mode: 420 });
    }
    if (values.output) await writeFile(resolve3(values.output), x.text);
    else process.stdout.write(x.text);
    if (x.files.length)
      process.stderr.write(
        `oci-build: wrote ${x.files.length} file(s) under ${join2(context, EXPORT_DIR)}/ for the file: steps (the Dockerfile's COPY reads them; keep them with the Dockerfile)
`
      );
    const shipped = p.variants.filter((v) => !v.stage).map((v) => v.name);
    process.stderr.write(
      `oci-build: stages ${x.stages.join(", ")}; build in ${context}${shipped.length > 1 ? ` with --target ${shipped.join("|")} (default: the last)` : ""}
`
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ExportError) {
      process.stderr.write(`oci-build: ${err.message}
`);
      return 2;
    }
    process.stderr.write(`oci-build: error: ${err.message ?? err}
`);
    return 1;
  } finally {
    await client.close();
  }
}

// src/cli.ts
var USAGE = `oci-build: build OCI images for a matrix of variants without a Docker daemon

Usage:
  oci-build build --config FILE [--variant V]... [--push] [--tag T]... [--output oci:DIR|docker-archive:FILE]...
                  [--digest-map FILE] [--platform os/arch[,...]]... [--cache-dir DIR] [--no-cache] [--cache-registry auto|false|REF] [--gzip-level N] [--compression gzip|zstd] [--zstd-level N]
                  [--isolation runc|chroot] [--provenance true|false|mode=max] [--sbom true|false] [--verbose]
  oci-build plan  --config FILE [--variant V]... [--tag T]... [--explain [--json]]   --explain: cached or rebuilt, and why, per layer
  build and plan also take: [--target V] [--base [VARIANT=]REF]... [--rebuild-from VARIANT[:STEP]]
  oci-build build -f|--file Dockerfile [--build-arg K=V]... [--target STAGE] [-t REPO[:TAG]]... [--secret id=ID,src=FILE|env=VAR]... [--push] [CONTEXT]
                  build a Dockerfile's target stage (CONTEXT defaults to the Dockerfile's directory)
  oci-build build ... --push --distribute PARTIAL.json   one job of a distributed build (per platform or component)
  oci-build merge --config FILE --partial PARTIAL.json... [--tag T]... [--digest-map FILE]
                  assemble the indexes from the jobs' manifests, tag once, write the combined digest map
${PULL_USAGE}
${DOCKERFILE_USAGE}

Credentials come from ~/.docker/config.json (or $DOCKER_CONFIG), and from
OCI_BUILD_REGISTRY, OCI_BUILD_USERNAME and OCI_BUILD_PASSWORD for one registry host.
--cache-registry: the layer cache's records in the registry (auto: tag buildcache in each pushed repository,
read when pushing; REF: one repository[:tag] for all; false: off).
SOURCE_DATE_EPOCH sets the timestamps in layers and configs (default: 0).
Exit codes: 0 success, 1 build or push failure, 2 bad usage or build file.`;
function stderrLogger(verbose) {
  return {
    info: (m) => process.stderr.write(`${m}
`),
    warn: (m) => process.stderr.write(`warning: ${m}
`),
    debug: (m) => {
      if (verbose) process.stderr.write(`debug: ${m}
`);
    },
    group: async (_name, fn) => fn()
  };
}
function sourceDateEpoch(env) {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === void 0 || v === "") return void 0;
  if (!/^\d+$/.test(v)) throw new UsageError(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${v}"`);
  return Number(v);
}
var UsageError = class extends Error {
};
function buildArgs(list) {
  const out = {};
  for (const a of list) {
    const eq = a.indexOf("=");
    if (eq === 0) throw new UsageError(`--build-arg "${a}" has no name`);
    if (eq < 0) {
      const v = process.env[a];
      if (v !== void 0) out[a] = v;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}
async function main(argv) {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${USAGE}
`);
    return command ? 0 : 2;
  }
  if (command === "pull") return await pullCommand(rest, process.env, USAGE);
  if (command === "dockerfile") return await dockerfileCommand(rest, process.env, USAGE);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${USAGE}
`);
    return 0;
  }
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs3({
      args: rest,
      options: {
        config: { type: "string", short: "c", default: "oci-build.yml" },
        variant: { type: "string", multiple: true, default: [] },
        push: { type: "boolean", default: false },
        tag: { type: "string", short: "t", multiple: true, default: [] },
        output: { type: "string", short: "o", multiple: true, default: [] },
        "digest-map": { type: "string" },
        platform: { type: "string", multiple: true, default: [] },
        "cache-dir": { type: "string" },
        "gzip-level": { type: "string", default: "1" },
        compression: { type: "string", default: "gzip" },
        "zstd-level": { type: "string" },
        isolation: { type: "string" },
        verbose: { type: "boolean", short: "v", default: false },
        "no-cache": { type: "boolean", default: false },
        "cache-registry": { type: "string", default: "auto" },
        distribute: { type: "string" },
        partial: { type: "string", multiple: true, default: [] },
        provenance: { type: "string", default: "true" },
        sbom: { type: "string", default: "true" },
        explain: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        target: { type: "string" },
        base: { type: "string", multiple: true, default: [] },
        "rebuild-from": { type: "string" },
        file: { type: "string", short: "f" },
        "build-arg": { type: "string", multiple: true, default: [] },
        secret: { type: "string", multiple: true, default: [] }
      },
      strict: true,
      allowPositionals: true
    }));
  } catch (err) {
    process.stderr.write(`oci-build: ${err.message}

${USAGE}
`);
    return 2;
  }
  const logger = stderrLogger(values.verbose ?? false);
  let workDir = "";
  try {
    const level = Number(values["gzip-level"]);
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`--gzip-level must be 0-9, got "${values["gzip-level"]}"`);
    const compression = values.compression;
    if (compression !== "gzip" && compression !== "zstd") throw new UsageError(`--compression must be gzip or zstd, got "${compression}"`);
    const zstdLevel = values["zstd-level"] === void 0 ? void 0 : Number(values["zstd-level"]);
    if (zstdLevel !== void 0 && (!Number.isInteger(zstdLevel) || zstdLevel < 1 || zstdLevel > 19))
      throw new UsageError(`--zstd-level must be 1-19, got "${values["zstd-level"]}"`);
    const isolation = values.isolation ?? "auto";
    if (isolation !== "auto" && isolation !== "runc" && isolation !== "chroot")
      throw new UsageError(`--isolation must be runc or chroot (default: runc when installed, else chroot), got "${isolation}"`);
    const credentials = {};
    const env = process.env;
    if (env.OCI_BUILD_REGISTRY && env.OCI_BUILD_USERNAME && env.OCI_BUILD_PASSWORD) {
      credentials[env.OCI_BUILD_REGISTRY] = { username: env.OCI_BUILD_USERNAME, password: env.OCI_BUILD_PASSWORD };
    }
    const inputs = {
      config: values.config ?? "oci-build.yml",
      variants: (values.variant ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean),
      push: values.push ?? false,
      tags: values.tag ?? [],
      outputs: (values.output ?? []).map((o) => {
        try {
          return parseOutput(o);
        } catch (e) {
          throw new UsageError(e.message);
        }
      }),
      digestMap: values["digest-map"],
      credentials,
      dockerConfig: true,
      platforms: (values.platform ?? []).flatMap((x) => x.split(",")).map((x) => x.trim()).filter(Boolean),
      sourceDateEpoch: sourceDateEpoch(env),
      gzipLevel: level,
      compression,
      ...zstdLevel !== void 0 ? { zstdLevel } : {},
      cache: !values["no-cache"],
      cacheRegistry: (() => {
        try {
          return parseCacheRegistry(values["cache-registry"] ?? "auto");
        } catch (e) {
          throw new UsageError(e.message);
        }
      })(),
      isolation,
      workDir: values["cache-dir"] ?? join3(env.XDG_CACHE_HOME || join3(homedir2(), ".cache"), "oci-build"),
      env,
      git: contextFromEnv(env, loadEventPayload(env)),
      ...values.distribute ? { distribute: { partialMap: values.distribute } } : {},
      provenance: (() => {
        try {
          return parseProvenance(values.provenance ?? "true");
        } catch (e) {
          throw new UsageError(e.message);
        }
      })(),
      sbom: (() => {
        try {
          return parseSbom(values.sbom ?? "true");
        } catch (e) {
          throw new UsageError(e.message);
        }
      })(),
      // With -f, --target names the Dockerfile's stage (given to the Dockerfile front end below).
      ...values.target && !values.file ? { target: values.target } : {},
      base: values.base ?? [],
      ...values["rebuild-from"] ? { rebuildFrom: values["rebuild-from"] } : {}
    };
    if (positionals.length > (values.file ? 1 : 0))
      throw new UsageError(
        `unexpected argument "${positionals[values.file ? 1 : 0]}"${values.file ? "" : " (a build context needs -f Dockerfile)"}`
      );
    try {
      inputs.secrets = new Map((values.secret ?? []).map((spec) => parseSecretFlag(spec)));
    } catch (e) {
      throw new UsageError(e.message);
    }
    if (values.file) {
      inputs.dockerfile = {
        file: values.file,
        ...positionals[0] ? { context: positionals[0] } : {},
        buildArgs: buildArgs(values["build-arg"] ?? []),
        ...values.target ? { target: values.target } : {},
        refs: inputs.tags,
        secretIds: [...inputs.secrets.keys()],
        note: (m) => logger.info(m)
      };
      inputs.tags = [];
    }
    workDir = resolve4(inputs.workDir);
    if (command === "merge") {
      const result2 = await runMerge({ ...inputs, push: true }, values.partial ?? [], logger);
      process.stdout.write(`${JSON.stringify(result2.digestMap, null, 2)}
`);
      return 0;
    }
    if (command === "plan" && values.explain) {
      const x = await explain(inputs);
      process.stdout.write(values.json ? `${JSON.stringify(x, null, 2)}
` : formatExplained(x));
      return 0;
    }
    if (command === "plan") {
      process.stdout.write(await formatPlan(inputs));
      return 0;
    }
    if (command !== "build") throw new UsageError(`unknown command "${command}"`);
    const progress = progressFor(process.stderr, env);
    const result = await runPipeline(inputs, loggerThrough(progress, values.verbose ?? false), progress).finally(() => progress.stop());
    const shown2 = values.verbose ? { digestMap: result.digestMap, layers: result.layers, ...result.sbom ? { sbom: result.sbom } : {}, rootfs: result.rootfs } : result.digestMap;
    process.stdout.write(`${JSON.stringify(shown2, null, 2)}
`);
    return 0;
  } catch (err) {
    if (err instanceof RanAsRoot) return err.exitCode;
    if (err instanceof ConfigError || err instanceof MergeError || err instanceof PrereqError) {
      process.stderr.write(`oci-build: ${err.message}
`);
      return 2;
    }
    const io = workDir && !(err instanceof IoError) ? otherIoError(err, workDir) : err;
    if (io instanceof IoError || io instanceof StepError) {
      process.stderr.write(`oci-build: ${io.message}
`);
      return io instanceof IoError ? io.exitCode : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`oci-build: ${err.message}

${USAGE}
`);
      return 2;
    }
    process.stderr.write(`oci-build: error: ${err.message ?? err}
`);
    if (values.verbose && err.stack) process.stderr.write(`${err.stack}
`);
    return 1;
  }
}
async function formatPlan(inputs) {
  const p = await plan(inputs);
  const lines = [`build file: ${p.buildFile.file}`];
  for (const v of p.variants) {
    const image = v.image ? formatRepository(parseReference(v.image, { repositoryOnly: true })) : "(none: not pushable)";
    lines.push(
      "",
      `variant ${v.name}`,
      `  image: ${image}`,
      `  ${v.from ? `from: ${v.from}` : `base: ${v.base}${p.baseOverridden.has(v.name) ? ` (--base; the build file says ${p.baseOverridden.get(v.name)})` : ""}`}`,
      `  platforms: ${(p.platforms.get(v.name) ?? []).map(formatPlatform).join(", ")}${p.asIndex.has(v.name) ? " (an OCI index)" : ""}`
    );
    const tags = p.tags.get(v.name) ?? [];
    if (tags.length) lines.push(`  tags: ${tags.join(", ")}`);
    v.steps.forEach((s, i) => {
      const extra = [
        s.kind === "copy" && s.from === void 0 ? `${s.sources.reduce((n, src) => n + src.matches.length, 0)} source path(s)` : "",
        "mode" in s && s.mode !== void 0 ? `mode ${s.mode.toString(8).padStart(4, "0")}` : "",
        "owner" in s && s.owner ? `owner ${s.owner}` : ""
      ].filter(Boolean).join(", ");
      lines.push(`  layer ${i + 1}: ${describeStep(s)}${extra ? ` (${extra})` : ""}`);
    });
    if (v.entrypoint) lines.push(`  entrypoint: ${JSON.stringify(v.entrypoint)}`);
    if (v.cmd) lines.push(`  cmd: ${JSON.stringify(v.cmd)}`);
    if (Object.keys(v.env).length)
      lines.push(
        `  env: ${Object.entries(v.env).map(([k, x]) => `${k}=${x}`).join(" ")}`
      );
    if (v.user) lines.push(`  user: ${v.user}`);
    if (v.workdir) lines.push(`  workdir: ${v.workdir}`);
    if (v.fixedPlatform) lines.push(`  built for ${v.fixedPlatform} only (FROM --platform), whatever platform uses it`);
    lines.push(...perPlatformLines(v));
  }
  return `${lines.join("\n")}
`;
}
function perPlatformLines(v) {
  return Object.entries(v.perPlatform ?? {}).flatMap(([platform, own]) => [
    `  for ${platform}: ${own.from ? `from: ${own.from}` : `base: ${own.base}`}`,
    ...own.steps.map((s, i) => `    layer ${i + 1}: ${describeStep(s)}`)
  ]);
}
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`oci-build: ${err?.stack ?? err}
`);
    process.exitCode = 1;
  }
);
