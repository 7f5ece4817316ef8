import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);
import {
  ConfigError,
  MergeError,
  RanAsRoot,
  contextFromEnv,
  external_exports,
  formatBytes,
  formatMs,
  formatPlatform,
  formatRepository,
  loadEventPayload,
  ownerOf,
  parseCacheRegistry,
  parseOutput,
  parseProvenance,
  parseReference,
  parseSbom,
  progressForLog,
  require_dist,
  runMerge,
  runPipeline,
  secretsFromInputs
} from "./chunks/chunk-ALYZCZGE.js";
import "./chunks/chunk-L7TZOQJY.js";
import "./chunks/chunk-CJM4TR3Q.js";
import {
  debug,
  error,
  getInput,
  group,
  info,
  setFailed,
  setOutput,
  setSecret,
  warning
} from "./chunks/chunk-OTVKK763.js";
import "./chunks/chunk-PCYRYIDL.js";
import {
  __toESM
} from "./chunks/chunk-Z3NNVBL6.js";

// src/action.ts
var import_yaml = __toESM(require_dist(), 1);
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp } from "node:fs/promises";
import { join as join4, resolve as resolve3 } from "node:path";
import { tmpdir } from "node:os";

// src/github/push-policy.ts
var AUTO_PUSH_EVENTS = /* @__PURE__ */ new Set(["push", "workflow_dispatch", "schedule", "release", "create", "repository_dispatch"]);
function shouldPush(mode, ctx) {
  const isPr = ctx.eventName === "pull_request" || ctx.eventName === "pull_request_target";
  if (isPr && ctx.isFork) {
    return {
      push: false,
      reason: `not pushing: ${ctx.eventName}${ctx.prNumber ? ` #${ctx.prNumber}` : ""} comes from a fork, whose images are never pushed (build only)`
    };
  }
  if (mode === "true") return { push: true, reason: "pushing: push is true" };
  if (mode === "false") return { push: false, reason: "not pushing: push is false (build only)" };
  if (isPr) {
    return {
      push: false,
      reason: `not pushing: push is auto and this is a ${ctx.eventName} run (build only; set push: true to push pull request images)`
    };
  }
  if (ctx.eventName === "merge_group") {
    return {
      push: false,
      reason: "not pushing: push is auto and this is a merge queue (merge_group) run (build only; the push after the merge publishes)"
    };
  }
  if (ctx.ref.startsWith("refs/tags/")) return { push: true, reason: `pushing: push is auto and ${ctx.ref} is a tag` };
  if (AUTO_PUSH_EVENTS.has(ctx.eventName)) return { push: true, reason: `pushing: push is auto and this is a ${ctx.eventName} run` };
  if (!ctx.eventName)
    return { push: false, reason: "not pushing: push is auto and this is not a GitHub Actions run (set push: true to push)" };
  return { push: false, reason: `not pushing: push is auto and ${ctx.eventName} is not an event auto pushes on (set push: true to push)` };
}
function parsePushMode(value) {
  const v = value.trim().toLowerCase();
  if (v === "" || v === "auto") return "auto";
  if (["true", "yes", "on", "1"].includes(v)) return "true";
  if (["false", "no", "off", "0"].includes(v)) return "false";
  throw new Error(`push: "${value}" is not auto, true or false`);
}

// src/github/image-names.ts
var COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
function sanitizeComponent(s) {
  let c = s.toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
  c = c.replace(/^[._-]+|[._-]+$/g, "");
  if (COMPONENT.test(c)) return c;
  return c.replace(/[._-]{2,}/g, (run2) => run2 === "__" || /^-+$/.test(run2) ? run2 : "-");
}
function defaultImage(ctx, variant, registry = "ghcr.io") {
  const [owner, repo] = ctx.repository.split("/");
  if (!owner || !repo)
    throw new Error(
      `cannot name an image for variant ${variant}: GITHUB_REPOSITORY is "${ctx.repository}", not owner/name (set the variant's image: in the build file)`
    );
  return `${registry.toLowerCase()}/${sanitizeComponent(ownerOf(ctx))}/${sanitizeComponent(`${repo}-${variant}`)}`;
}

// src/github/ghcr-errors.ts
var PERMISSIONS = "give the job `permissions: packages: write` (and `contents: read`) in the workflow";
var ACTIONS_ACCESS = (registry) => `if the package already exists, open it on GitHub (your profile or organization \u2192 Packages \u2192 the package \u2192 Package settings), and under "Manage Actions access" add this repository with the Write role (and "Connect repository" so ${registry} links it)`;
function explainRegistryError(err) {
  const msg = err.message.toLowerCase();
  const codes = err.codes.map((c) => c.toUpperCase());
  const ghcr = /(^|\.)ghcr\.io$/i.test(err.registry.replace(/:\d+$/, ""));
  const denied = err.status === 403 || codes.includes("DENIED");
  const unauthorized = err.status === 401 || codes.includes("UNAUTHORIZED");
  if (ghcr) {
    if (msg.includes("not allowed to create organization package")) {
      return [
        `${err.registry} refused to create a new organization package for this token.`,
        `Fix: ${PERMISSIONS};`,
        'in the organization settings \u2192 Actions \u2192 General \u2192 Workflow permissions, allow "Read and write permissions" (and in the repository settings too);',
        "in the organization settings \u2192 Packages \u2192 Package creation, allow the visibility the package will have (public / private / internal);",
        "a GitHub App installation token cannot create organization packages: log in with `${{ github.token }}` (the default registry-password) instead."
      ].join(" ");
    }
    if (msg.includes("not allowed to write organization package") || msg.includes("write_package") || msg.includes("permission_denied")) {
      return [
        `${err.registry} refused to write to the package with this token.`,
        `Fix: ${PERMISSIONS};`,
        `${ACTIONS_ACCESS(err.registry)};`,
        "with a personal access token, it needs the write:packages scope."
      ].join(" ");
    }
    if (denied) {
      return [
        `${err.registry} denied the push.`,
        `Fix: ${PERMISSIONS} (pull requests from forks get a read-only token and cannot push);`,
        `${ACTIONS_ACCESS(err.registry)};`,
        "check that the image name is ghcr.io/<owner>/<name> with the owner this repository belongs to, in lowercase."
      ].join(" ");
    }
    if (unauthorized) {
      return [
        `${err.registry} did not accept the credentials.`,
        "Fix: leave registry-username / registry-password at their defaults (`${{ github.actor }}` / `${{ github.token }}`), or give a token that is valid for ghcr.io;",
        `${PERMISSIONS}.`
      ].join(" ");
    }
    return void 0;
  }
  if (unauthorized) {
    return `${err.registry} did not accept the credentials. Fix: set registry: ${err.registry} with registry-username / registry-password (e.g. from secrets), or log in with docker login before this step.`;
  }
  if (denied) {
    return `${err.registry} denied access. Fix: check that the credentials for ${err.registry} may push to this repository, and that the image name is right.`;
  }
  return void 0;
}

// src/github/summary.ts
import { appendFile } from "node:fs/promises";
var MAX_INLINE_JSON = 512 * 1024;
function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
var code = (s) => `<code>${escapeHtml(s)}</code>`;
function shortDigest(d) {
  const [alg, hex] = d.split(":");
  return hex ? `${alg}:${hex.slice(0, 12)}` : d;
}
function tagName(tag, image) {
  return tag.startsWith(`${image}:`) ? tag.slice(image.length + 1) : tag;
}
function layers(r) {
  if (r.layersPushed === void 0 && r.layersReused === void 0) return "\u2013";
  return `${r.layersPushed ?? 0} pushed / ${r.layersReused ?? 0} reused`;
}
function attestationsCell(r) {
  const subjects = Object.entries(r.attestations ?? {});
  if (!subjects.length) return "\u2013";
  const count = (k) => subjects.filter(([, a]) => a[k]).length;
  const parts = [count("provenance") ? `${count("provenance")} provenance` : "", count("sbom") ? `${count("sbom")} SBOM` : ""];
  const list2 = subjects.map(
    ([subject, a]) => `${code(shortDigest(subject))}: ${Object.entries(a).map(([k, d]) => `${escapeHtml(k)} ${code(shortDigest(d))}`).join(", ")}`
  ).join("<br>");
  return `<details><summary>${escapeHtml(parts.filter(Boolean).join(", "))}</summary>${list2}</details>`;
}
function renderSummary(rows, digestMap) {
  const pushed = rows.filter((r) => r.pushed).length;
  const head = ["Variant", "Image", "Digest", "Tags", "Platforms", "Size", "Layers", "Attestations", "Time"];
  const lines3 = [];
  lines3.push(`### oci-build: ${rows.length} image${rows.length === 1 ? "" : "s"} built${pushed ? `, ${pushed} pushed` : ", none pushed"}`);
  lines3.push("");
  lines3.push("<table>");
  lines3.push(`<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>`);
  for (const r of [...rows].sort((a, b) => a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0)) {
    const cells = [
      `<b>${escapeHtml(r.variant)}</b>${r.pushed ? "" : "<br><sub>not pushed</sub>"}`,
      code(r.image),
      `<details><summary>${code(shortDigest(r.digest))}</summary>${code(r.ref)}</details>`,
      r.tags.length ? r.tags.map((t) => code(tagName(t, r.image))).join(" ") : "\u2013",
      r.platforms.length ? r.platforms.map(escapeHtml).join("<br>") : "\u2013",
      escapeHtml(formatBytes(r.size)),
      escapeHtml(layers(r)),
      attestationsCell(r),
      r.durationMs === void 0 ? "\u2013" : escapeHtml(formatMs(r.durationMs))
    ];
    lines3.push(`<tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`);
  }
  lines3.push("</table>");
  lines3.push("");
  const json = JSON.stringify(digestMap, null, 2);
  lines3.push("<details><summary>Digest map (JSON)</summary>");
  lines3.push("");
  if (json.length > MAX_INLINE_JSON) {
    lines3.push(
      `The digest map is ${formatBytes(json.length)}, too big for the summary: see the \`metadata\` output or the digest map file.`
    );
  } else {
    const fence = "`".repeat(Math.max(3, ...[...json.matchAll(/`+/g)].map((m) => m[0].length + 1)));
    lines3.push(`${fence}json`, json, fence);
  }
  lines3.push("");
  lines3.push("</details>");
  lines3.push("");
  return lines3.join("\n");
}
async function writeSummary(text, env = process.env) {
  const file = env.GITHUB_STEP_SUMMARY;
  if (!file) return false;
  await appendFile(file, text.endsWith("\n") ? text : `${text}
`);
  return true;
}

// src/github/artifact.ts
import { stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { createHash } from "node:crypto";
var INVALID_NAME = /[":<>|*?\r\n\\/]/;
async function uploadDigestMapArtifact(file, name, retentionDays, deps) {
  const logger = deps.logger;
  const env = deps.env ?? process.env;
  if (!name) return void 0;
  const skip = (why) => {
    logger.warn(`digest map artifact "${name}" not uploaded: ${why}`);
    return void 0;
  };
  if (INVALID_NAME.test(name)) return skip('the name may not contain " : < > | * ? \\ / or line breaks (choose another artifact name)');
  let retention = retentionDays;
  if (retention !== void 0 && (!Number.isInteger(retention) || retention < 0 || retention > 90)) {
    logger.warn(`artifact retention of ${retention} days is not a whole number from 1 to 90; using the repository default`);
    retention = void 0;
  }
  if (retention === 0) retention = void 0;
  const path = resolve(file);
  try {
    const st = await stat(path);
    if (!st.isFile()) return skip(`${path} is not a file`);
  } catch {
    return skip(`${path} does not exist (was the digest map written?)`);
  }
  let client = deps.client;
  if (!client) {
    const missing = ["ACTIONS_RUNTIME_TOKEN", "ACTIONS_RESULTS_URL"].filter((k) => !env[k]);
    if (missing.length) {
      return skip(
        `the artifact service is not available here (${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set: this is not a GitHub Actions job step, or a wrapper did not pass them on)`
      );
    }
    try {
      const { DefaultArtifactClient } = await import("./chunks/artifact-SSROJX7G.js");
      client = new DefaultArtifactClient();
    } catch (e) {
      return skip(`@actions/artifact could not be loaded: ${e.message}`);
    }
  }
  try {
    const res = await client.uploadArtifact(name, [path], dirname(path), retention === void 0 ? {} : { retentionDays: retention });
    if (res.id === void 0) return skip("the artifact service returned no artifact id");
    logger.info(
      `digest map artifact "${name}" uploaded (${basename(path)}, id ${res.id}${res.size !== void 0 ? `, ${res.size} bytes` : ""})`
    );
    return res.id;
  } catch (e) {
    const msg = e?.message ?? String(e);
    const hint = /conflict|already exists/i.test(msg) ? " (another job of this run already uploaded an artifact with this name: give each matrix job its own name)" : "";
    return skip(`${msg}${hint}`);
  }
}
var MAX_ARTIFACT_NAME = 100;
function defaultArtifactName(variants, ctx, extra) {
  const set = [...new Set(variants.map((v) => v.trim()).filter(Boolean))].sort();
  const parts = ["digest-map", ctx.job, set.length ? set.join("+") : "all", extra].filter((p) => !!p);
  const full = parts.join("-").replace(/[":<>|*?\r\n\\/\s]+/g, "-");
  if (full.length <= MAX_ARTIFACT_NAME) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 8);
  return `${full.slice(0, MAX_ARTIFACT_NAME - hash.length - 1).replace(/[-+]+$/, "")}-${hash}`;
}

// src/distribute/artifacts.ts
import { readdir } from "node:fs/promises";
import { join } from "node:path";
function matchesPattern(name, pattern) {
  const re = new RegExp(
    `^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`
  );
  return re.test(name);
}
async function downloadPartials(pattern, dir, logger, client) {
  const c = client ?? await defaultClient();
  const { artifacts } = await c.listArtifacts({ latest: true });
  const matching = artifacts.filter((a) => matchesPattern(a.name, pattern)).sort((a, b) => a.name < b.name ? -1 : 1);
  logger.info(`merge: ${matching.length} artifact(s) match ${pattern}: ${matching.map((a) => a.name).join(", ") || "none"}`);
  const files = [];
  for (const a of matching) {
    const path = join(dir, a.name);
    await c.downloadArtifact(a.id, { path });
    for (const f of (await readdir(path)).sort()) if (f.endsWith(".json")) files.push(join(path, f));
  }
  return files;
}
async function defaultClient() {
  const { DefaultArtifactClient } = await import("./chunks/artifact-SSROJX7G.js");
  return new DefaultArtifactClient();
}

// src/github/actions-cache.ts
import { createHash as createHash2 } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join as join2 } from "node:path";
function cachePaths(workDir) {
  return ["blobs/sha256", "layers", "files.idx", "scans", "keys", "run-cache"].map((p) => join2(workDir, p));
}
async function cacheKeys(configPath, variants, platforms, sha) {
  let text = "";
  try {
    text = await readFile(configPath, "utf8");
  } catch {
  }
  const scope = createHash2("sha256").update(text).update("\0").update([...variants].sort().join(",")).update("\0").update([...platforms].sort().join(",")).digest("hex").slice(0, 16);
  const prefix = `oci-build-v1-${process.platform}-${process.arch}-`;
  return { key: `${prefix}${scope}-${sha || Date.now()}`, restoreKeys: [`${prefix}${scope}-`, prefix] };
}
async function service() {
  return await import("./chunks/cache-HT2ERGQU.js");
}
async function restoreLayerCache(workDir, keys, logger, svc) {
  try {
    const s = svc ?? await service();
    if (!s.isFeatureAvailable()) {
      logger.info("layer cache: the Actions cache service is not available here; building with the local cache only");
      return void 0;
    }
    const hit = await s.restoreCache(cachePaths(workDir), keys.key, keys.restoreKeys);
    logger.info(
      hit ? `layer cache: restored ${hit}` : "layer cache: nothing restored (no cache for these keys yet, or see the warning above)"
    );
    return hit;
  } catch (e) {
    logger.warn(`layer cache: restore failed, building without it: ${e.message}`);
    return void 0;
  }
}
async function saveLayerCache(workDir, key, restored, logger, svc) {
  if (restored === key) return;
  try {
    const s = svc ?? await service();
    if (!s.isFeatureAvailable()) return;
    const id = await s.saveCache(cachePaths(workDir), key);
    if (id === -1) logger.warn(`layer cache: not saved: the Actions cache did not take ${key} (see above); the next run builds without it`);
    else logger.info(`layer cache: saved ${key}`);
  } catch (e) {
    logger.warn(`layer cache: not saved: ${e.message}`);
  }
}

// src/github/build-push-inputs.ts
import { existsSync } from "node:fs";
import { join as join3, resolve as resolve2 } from "node:path";
var items = (s) => (s.includes("\n") ? s.split("\n") : s.split(",")).map((x) => x.trim()).filter((x) => x && !x.startsWith("#"));
var lines = (s) => s.split("\n").map((x) => x.trim()).filter((x) => x && !x.startsWith("#"));
function isBuildxOutputs(text) {
  return /(^|\n)\s*type=/.test(text);
}
function dropInWanted(get, workspace) {
  if (get("file") || get("context")) return true;
  const config = get("config");
  if (config && config !== "oci-build.yml") return false;
  return !existsSync(resolve2(workspace, config || "oci-build.yml")) && existsSync(join3(workspace, "Dockerfile"));
}
var DAEMON_ONLY = {
  builder: "there is no builder instance here; drop the input (and docker/setup-buildx-action)",
  load: "there is no Docker daemon to load into; use outputs: type=docker,dest=image.tar and `docker load -i image.tar`",
  "cache-from": "the layer cache is kept with the Actions cache (input cache) and in the registry (input cache-registry); drop cache-from",
  "cache-to": "the layer cache is saved with the Actions cache (input cache) and in the registry (input cache-registry); drop cache-to",
  allow: "entitlements (network.host, security.insecure) do not apply; RUN --network=host shares the runner network already",
  network: "RUN steps share the runner network; use RUN --network=none per instruction to cut it off",
  "shm-size": "RUN steps get a 64 MiB /dev/shm; drop shm-size",
  ulimit: "RUN steps get the runner process limits; drop ulimit",
  ssh: "SSH agent forwarding is not supported; pass a key or token with secrets / secret-files and RUN --mount=type=secret",
  "cgroup-parent": "RUN steps are not put in a chosen cgroup; drop cgroup-parent",
  "add-hosts": "RUN steps see the runner /etc/hosts; drop add-hosts",
  call: "only builds are supported (no lint/outline/targets calls); drop call",
  pull: "base images are always resolved from their registry; drop pull",
  "no-cache-filters": "use no-cache (all steps) or the CLI --rebuild-from; drop no-cache-filters",
  attests: "use the provenance and sbom inputs"
};
function keyValues(text, input) {
  const out = {};
  for (const l of lines(text)) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new Error(`input ${input}: "${l}" is not KEY=VALUE`);
    out[l.slice(0, eq).trim()] = l.slice(eq + 1);
  }
  return out;
}
function isReference(t) {
  return !t.startsWith("type=") && !t.includes(",") && (t.includes("/") || t.includes(":"));
}
function outputsOf(text) {
  const outputs = [];
  let push;
  for (const line of lines(text)) {
    if (/^(oci|oci-archive|docker-archive):/.test(line)) {
      outputs.push(parseOutput(line));
      continue;
    }
    const kv = Object.fromEntries(line.split(",").map((p) => [p.split("=")[0].trim(), p.slice(p.indexOf("=") + 1).trim()]));
    const type = kv.type ?? (line.includes("=") ? void 0 : line);
    if (type === "registry") push = true;
    else if (type === "image") push = kv.push === "true";
    else if ((type === "oci" || type === "docker") && kv.dest)
      outputs.push({ kind: type === "oci" ? kv.tar === "false" ? "oci" : "oci-archive" : "docker-archive", path: kv.dest });
    else
      throw new Error(
        `input outputs: "${line}" is not supported here; use type=registry, type=image,push=true|false, type=oci,dest=FILE or type=docker,dest=FILE`
      );
  }
  return { outputs, ...push !== void 0 ? { push } : {} };
}
function readBuildPushInputs(get, workspace, env = process.env) {
  const warnings = [];
  for (const [name, what] of Object.entries(DAEMON_ONLY)) {
    const v = get(name).trim();
    if (!v || name === "pull" && v === "false" || name === "load" && v === "false") continue;
    warnings.push(`input ${name} is ignored: ${what}`);
  }
  const context = resolve2(workspace, get("context") || ".");
  const file = get("file") ? resolve2(workspace, get("file")) : join3(context, "Dockerfile");
  const tags = items(get("tags"));
  const pushInput = get("push").trim().toLowerCase();
  const out = outputsOf(get("outputs"));
  const target = get("target").trim();
  return {
    file,
    context,
    buildArgs: keyValues(get("build-args"), "build-args"),
    ...target ? { target } : {},
    refs: tags.filter(isReference),
    tagRules: tags.filter((t) => !isReference(t)),
    labels: keyValues(get("labels"), "labels"),
    annotations: Object.fromEntries(
      Object.entries(keyValues(get("annotations"), "annotations")).map(([k, v]) => [
        k.replace(/^(manifest|index|manifest-descriptor|index-descriptor)(\[[^\]]*\])?:/, ""),
        v
      ])
    ),
    push: pushInput === "true" || pushInput === "auto" ? pushInput : pushInput === "false" ? "false" : out.push ? "true" : "false",
    outputs: out.outputs,
    noCache: get("no-cache").trim().toLowerCase() === "true",
    secrets: secretsFromInputs({ secrets: get("secrets"), secretFiles: get("secret-files"), secretEnvs: get("secret-envs") }, env),
    warnings
  };
}
function buildPushMetadata(e, configDigest, descriptor) {
  return {
    "containerimage.digest": e.digest,
    ...configDigest ? { "containerimage.config.digest": configDigest } : {},
    ...descriptor ? { "containerimage.descriptor": descriptor } : {},
    "image.name": e.tags.join(",")
  };
}
function dropInPipeline(pi, d, git) {
  const [owner, repo] = git.repository.split("/");
  const refs = d.refs.map((r) => {
    try {
      return parseReference(r);
    } catch (e) {
      throw new Error(`input tags: ${e.message}`);
    }
  });
  const repos = [...new Set(refs.map((r) => formatRepository(r)))];
  if (repos.length > 1) throw new Error(`input tags: the references name several repositories (${repos.join(", ")}); give one per build`);
  const image = repos[0] ?? (owner && repo ? `ghcr.io/${sanitizeComponent(owner)}/${sanitizeComponent(repo)}` : void 0);
  const tags = [...d.tagRules, ...refs.map((r) => `type=raw,value=${r.tag ?? "latest"}`)];
  return {
    ...pi,
    config: d.file,
    dockerfile: {
      file: d.file,
      context: d.context,
      buildArgs: d.buildArgs,
      ...d.target ? { target: d.target } : {},
      refs: [],
      secretIds: [...d.secrets.keys()],
      labels: d.labels,
      annotations: d.annotations,
      ...image ? { image } : {}
    },
    tags,
    outputs: [...pi.outputs, ...d.outputs],
    cache: pi.cache !== false && !d.noCache,
    secrets: d.secrets
  };
}

// src/action.ts
var lines2 = (s) => s.split("\n").map((x) => x.trim()).filter((x) => x && !x.startsWith("#"));
var list = (s) => s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
function bool(name, value) {
  const v = value.trim().toLowerCase();
  if (["true", "yes", "1", "on"].includes(v)) return true;
  if (["false", "no", "0", "off", ""].includes(v)) return false;
  throw new Error(`input ${name}: "${value}" is not true or false`);
}
function parseImages(text) {
  const ls = lines2(text);
  if (ls.length === 1 && !ls[0].includes("=")) {
    const template = ls[0];
    return (variant) => template.replaceAll("${variant}", variant);
  }
  const out = {};
  for (const l of ls) {
    const i = l.indexOf("=");
    if (i <= 0) throw new Error(`input images: "${l}" is not variant=repository (or give one repository template with \${variant})`);
    out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return out;
}
var authSchema = external_exports.array(external_exports.object({ registry: external_exports.string().min(1), username: external_exports.string().min(1), password: external_exports.string().min(1) }).strict());
function parseRegistryAuth(text) {
  if (!text.trim()) return [];
  let doc;
  try {
    doc = (0, import_yaml.parse)(text);
  } catch (e) {
    throw new Error(`input registry-auth is not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const r = authSchema.safeParse(doc);
  if (!r.success)
    throw new Error(
      `input registry-auth must be a YAML list of {registry, username, password}: ${r.error.issues.map((i) => `[${i.path.join(".")}] ${i.message}`).join("; ")}`
    );
  return r.data;
}
var inputsSchema = external_exports.object({
  mode: external_exports.enum(["build", "merge"]),
  config: external_exports.string().min(1, "config: give the path of the build file, e.g. oci-build.yml"),
  variants: external_exports.array(external_exports.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, "variants: names are lowercase letters, digits, _ . -")),
  gzipLevel: external_exports.number().int().min(0, "gzip-level: 0-9").max(9, "gzip-level: 0-9"),
  compression: external_exports.enum(["gzip", "zstd"], { message: "compression: gzip or zstd" }),
  zstdLevel: external_exports.number().int().min(1, "zstd-level: 1-19").max(19, "zstd-level: 1-19"),
  artifactRetentionDays: external_exports.number().int().min(1).max(90).optional(),
  isolation: external_exports.enum(["auto", "runc", "chroot"], { message: "isolation: runc, chroot, or auto (runc when installed, else chroot)" })
}).passthrough();
function readInputs() {
  const password = getInput("registry-password");
  if (password) setSecret(password);
  if (getInput("github-token")) setSecret(getInput("github-token"));
  const registryAuth = parseRegistryAuth(getInput("registry-auth"));
  for (const a of registryAuth) setSecret(a.password);
  const images = parseImages(getInput("images"));
  const retention = getInput("artifact-retention-days");
  const inputs = {
    mode: getInput("mode") || "build",
    config: getInput("config") || "oci-build.yml",
    variants: list(getInput("variants")),
    push: parsePushMode(getInput("push") || "auto"),
    tags: lines2(getInput("tags")),
    flavor: lines2(getInput("flavor")),
    images: typeof images === "function" ? {} : images,
    registry: getInput("registry") || "ghcr.io",
    registryUsername: getInput("registry-username"),
    registryPassword: password,
    registryAuth,
    digestMap: getInput("digest-map") || "image-digests.json",
    // buildx's `type=...,dest=` form is build-push-action's: the drop-in mode reads it (build-push-inputs.ts).
    outputs: isBuildxOutputs(getInput("outputs")) ? [] : list(getInput("outputs")).map(parseOutput),
    platforms: list(getInput("platforms")),
    gzipLevel: Number(getInput("gzip-level") || "1"),
    compression: getInput("compression") || "gzip",
    zstdLevel: Number(getInput("zstd-level") || "3"),
    distribute: bool("distribute", getInput("distribute")),
    partialPattern: getInput("partial-pattern") || "oci-build-partial-*",
    artifactName: getInput("artifact-name"),
    artifactRetentionDays: retention ? Number(retention) : void 0,
    summary: bool("summary", getInput("summary") || "true"),
    cache: bool("cache", getInput("cache") || "true"),
    cacheRegistry: parseCacheRegistry(getInput("cache-registry") || "auto"),
    isolation: getInput("isolation") || "auto",
    base: lines2(getInput("base")),
    provenance: parseProvenance(getInput("provenance") || "true"),
    sbom: parseSbom(getInput("sbom") || "true"),
    githubToken: getInput("github-token")
  };
  const checked = inputsSchema.safeParse(inputs);
  if (!checked.success)
    throw new Error(`invalid inputs: ${checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return { inputs, imageTemplate: typeof images === "function" ? images : void 0 };
}
var coreLogger = {
  info: (m) => info(m),
  warn: (m) => warning(m),
  debug: (m) => debug(m),
  group: (name, fn) => group(name, fn)
};
function sourceDateEpoch(env, git) {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch) {
    if (!/^\d+$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${epoch}"`);
    return Number(epoch);
  }
  try {
    const out = execFileSync("git", ["log", "-1", "--format=%ct"], {
      cwd: env.GITHUB_WORKSPACE || process.cwd(),
      stdio: ["ignore", "pipe", "ignore"]
    }).toString().trim();
    if (/^\d+$/.test(out)) return Number(out);
  } catch {
  }
  if (git.commitDate) {
    const t = Date.parse(git.commitDate);
    if (!Number.isNaN(t)) return Math.floor(t / 1e3);
  }
  return void 0;
}
function pipelineInputs(a, env, git, push, imageTemplate) {
  const credentials = {};
  if (a.registryUsername && a.registryPassword) credentials[a.registry] = { username: a.registryUsername, password: a.registryPassword };
  for (const r of a.registryAuth) credentials[r.registry] = { username: r.username, password: r.password };
  return {
    config: a.config,
    variants: a.variants,
    push,
    tags: a.tags,
    flavor: a.flavor,
    git,
    githubLabels: Boolean(git.repository),
    images: a.images,
    defaultImage: imageTemplate ?? (git.repository ? (v) => defaultImage(git, v) : void 0),
    outputs: a.outputs,
    digestMap: a.digestMap,
    credentials,
    dockerConfig: true,
    platforms: a.platforms,
    sourceDateEpoch: sourceDateEpoch(env, git),
    gzipLevel: a.gzipLevel,
    compression: a.compression,
    zstdLevel: a.zstdLevel,
    cache: a.cache,
    cacheRegistry: a.cacheRegistry,
    isolation: a.isolation,
    base: a.base,
    provenance: a.provenance,
    sbom: a.sbom,
    // On the Actions runtime, attestations are signed as GitHub artifact attestations when the job may.
    ...a.githubToken && env.GITHUB_ACTIONS === "true" ? { signing: { token: a.githubToken, upload: true } } : {},
    workDir: join4(env.RUNNER_TEMP || tmpdir(), "oci-build"),
    env
  };
}
function setOutputs(o) {
  setOutput("digests", JSON.stringify(o.digests));
  setOutput("metadata", JSON.stringify(o.buildPush?.metadata ?? o.metadata));
  setOutput("digest", o.buildPush?.digest ?? "");
  setOutput("imageid", o.buildPush?.imageid ?? "");
  setOutput("digest-map", o.digestMapPath ?? "");
  setOutput("artifact-id", o.artifactId === void 0 ? "" : String(o.artifactId));
  setOutput("pushed", String(o.pushed));
}
async function run() {
  const started = Date.now();
  try {
    const { inputs, imageTemplate } = readInputs();
    const git = contextFromEnv(process.env, loadEventPayload(process.env));
    const dropIn = readDropIn(inputs);
    const decision = inputs.mode === "merge" ? { push: true, reason: "merge always pushes the indexes and tags" } : shouldPush(dropIn ? parsePushMode(dropIn.push) : inputs.push, git);
    info(`push: ${decision.push} (${decision.reason})`);
    const common = pipelineInputs(inputs, process.env, git, decision.push, imageTemplate);
    const pi = dropIn ? dropInPipeline(common, dropIn, git) : withBuildFileSecrets(common);
    const jobTag = [...inputs.variants].sort().join("+") || "all";
    const platformTag = inputs.platforms.map((p) => p.replaceAll("/", "-")).join("+");
    let out;
    if (inputs.mode === "merge") {
      await mkdir(pi.workDir, { recursive: true });
      const dir = await mkdtemp(join4(pi.workDir, "partials-"));
      const files = await group("download partial digest maps", () => downloadPartials(inputs.partialPattern, dir, coreLogger));
      const r = await runMerge(pi, files, coreLogger);
      out = { digests: r.digests, metadata: r.digestMap, digestMapPath: r.digestMapPath, pushed: true };
    } else {
      const partialMap = inputs.distribute ? resolve3(pi.workDir, `partial-${process.pid}.json`) : void 0;
      const keys = pi.cache ? await cacheKeys(resolve3(pi.config), inputs.variants, inputs.platforms, git.sha) : void 0;
      const restored = keys ? await group("restore layer cache", () => restoreLayerCache(pi.workDir, keys, coreLogger)) : void 0;
      const r = await runPipeline({ ...pi, ...partialMap ? { distribute: { partialMap } } : {} }, coreLogger, progressForLog(coreLogger));
      if (keys) await group("save layer cache", () => saveLayerCache(pi.workDir, keys.key, restored, coreLogger));
      out = { digests: r.digests, metadata: r.digestMap, digestMapPath: r.digestMapPath, pushed: decision.push };
      if (dropIn) out.buildPush = buildPushOutputs(r);
      if (partialMap) {
        const name = `oci-build-partial-${git.job ?? "job"}-${jobTag}${platformTag ? `-${platformTag}` : ""}`;
        const id = await uploadDigestMapArtifact(partialMap, name, inputs.artifactRetentionDays, { logger: coreLogger });
        if (id === void 0) warning("the partial digest map was not uploaded: a merge job will not find this job's images");
      }
      if (inputs.summary) {
        const rows = r.variants.map((bv) => {
          const e = r.digestMap[bv.variant];
          const own = r.layers.filter((l) => l.variant === bv.variant && l.origin !== "base" && l.origin !== "from").length;
          const total = bv.images.reduce((n, i) => n + i.layers.length, 0);
          return {
            variant: bv.variant,
            image: e.image,
            digest: e.digest,
            ref: e.ref,
            tags: e.tags,
            platforms: bv.images.map((i) => formatPlatform(i.platform)),
            size: e.size,
            layersPushed: own,
            layersReused: total - own,
            durationMs: Date.now() - started,
            pushed: e.pushed,
            ...e.attestations ? { attestations: e.attestations } : {}
          };
        });
        await writeSummary(renderSummary(rows, r.digestMap));
      }
    }
    if (out.digestMapPath && inputs.artifactName !== "") {
      const name = inputs.artifactName === "auto" || !inputs.artifactName ? defaultArtifactName(
        inputs.variants,
        git,
        [inputs.mode === "merge" ? "merged" : "", platformTag].filter(Boolean).join("-") || void 0
      ) : inputs.artifactName;
      out.artifactId = await uploadDigestMapArtifact(out.digestMapPath, name, inputs.artifactRetentionDays, { logger: coreLogger });
    }
    setOutputs(out);
  } catch (err) {
    if (err instanceof RanAsRoot) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      for (const p of err.problems) {
        error(`${p.field ? `${p.field}: ` : ""}${p.message}${p.hint ? ` (fix: ${p.hint})` : ""}`, {
          title: "oci-build: build file",
          file: p.file,
          startLine: p.line,
          startColumn: p.column
        });
      }
    }
    let message = err.message ?? String(err);
    const registryError = findRegistryError(err);
    const remedy = registryError ? explainRegistryError(registryError) : void 0;
    if (remedy) message += `
${remedy}`;
    if (err instanceof MergeError) message = err.message;
    setFailed(message);
  }
}
function maskEachLine(text) {
  for (const l of text.split("\n")) if (l.trim()) setSecret(l.trim());
}
function withBuildFileSecrets(pi) {
  maskEachLine(getInput("secrets"));
  const secrets = secretsFromInputs({
    secrets: getInput("secrets"),
    secretFiles: getInput("secret-files"),
    secretEnvs: getInput("secret-envs")
  });
  for (const v of secrets.values()) maskEachLine(v.toString("utf8"));
  return secrets.size ? { ...pi, secrets } : pi;
}
function readDropIn(inputs) {
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  if (inputs.mode !== "build" || !dropInWanted(getInput, workspace)) {
    if (isBuildxOutputs(getInput("outputs")))
      throw new Error(
        "input outputs: type=... is build-push-action's form, read only when building a Dockerfile (file or context); with a build file give oci:DIR, oci-archive:FILE or docker-archive:FILE"
      );
    return void 0;
  }
  maskEachLine(getInput("secrets"));
  const d = readBuildPushInputs(getInput, workspace);
  for (const v of d.secrets.values()) maskEachLine(v.toString("utf8"));
  info(`building ${d.file} (context ${d.context}) with docker/build-push-action's inputs`);
  for (const w of d.warnings) warning(w);
  return d;
}
function buildPushOutputs(r) {
  const bv = r.variants[0];
  const e = bv ? r.digestMap[bv.variant] : void 0;
  if (!bv || !e) return void 0;
  const config = bv.images.length === 1 ? bv.images[0].configDescriptor.digest : void 0;
  return {
    digest: e.digest,
    imageid: config ?? e.digest,
    metadata: buildPushMetadata(e, config, { mediaType: bv.tagged.mediaType, digest: bv.tagged.digest, size: bv.tagged.size })
  };
}
function findRegistryError(err) {
  for (let e = err, i = 0; e && i < 5; e = e.cause, i++) {
    const r = e;
    if (Array.isArray(r.codes) && typeof r.registry === "string") {
      return {
        status: typeof r.status === "number" ? r.status : void 0,
        codes: r.codes,
        message: String(r.message),
        registry: r.registry
      };
    }
  }
  return void 0;
}

// src/main.ts
await run();
