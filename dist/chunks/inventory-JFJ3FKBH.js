import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);
import {
  FsTree,
  applyLayer,
  decompressedChunks,
  digestHex,
  imagePath,
  readTar,
  sha256,
  writeAtomic
} from "./chunk-CJM4TR3Q.js";
import {
  require_packageurl_js
} from "./chunk-TNQBDC7A.js";
import {
  __toESM
} from "./chunk-Z3NNVBL6.js";

// src/attest/sbom/inventory.ts
import { readFile } from "node:fs/promises";
import { join as join2 } from "node:path";
import { Transform } from "node:stream";

// src/attest/sbom/executables.ts
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

// src/attest/sbom/cargo.ts
var import_packageurl_js = __toESM(require_packageurl_js(), 1);
import { inflateSync } from "node:zlib";
var DEP_V0_SECTION = ".dep-v0";
var MAX_JSON = 16 << 20;
function parseCargoAuditable(binaryPath, section) {
  let doc;
  try {
    doc = JSON.parse(inflateSync(section, { maxOutputLength: MAX_JSON }).toString("utf8"));
  } catch {
    return void 0;
  }
  if (!Array.isArray(doc.packages)) return void 0;
  const out = [];
  for (const p of doc.packages) {
    if (typeof p.name !== "string" || typeof p.version !== "string") continue;
    if (p.kind === "build") continue;
    out.push({
      ecosystem: "cargo",
      name: p.name,
      version: p.version,
      purl: new import_packageurl_js.PackageURL("cargo", void 0, p.name, p.version, void 0, void 0).toString(),
      foundIn: binaryPath
    });
  }
  return out;
}

// src/attest/sbom/elf.ts
var ELF_HEADER_SIZE = 64;
function isElf(head) {
  return head.length >= 4 && head[0] === 127 && head.subarray(1, 4).toString("latin1") === "ELF";
}
function parseElfHeader(head) {
  if (!isElf(head) || head.length < ELF_HEADER_SIZE) return void 0;
  const is64 = head[4] === 2;
  const littleEndian = head[5] === 1;
  const u16 = (o) => littleEndian ? head.readUInt16LE(o) : head.readUInt16BE(o);
  const u32 = (o) => littleEndian ? head.readUInt32LE(o) : head.readUInt32BE(o);
  const u64 = (o) => Number(littleEndian ? head.readBigUInt64LE(o) : head.readBigUInt64BE(o));
  return is64 ? { is64, littleEndian, shoff: u64(40), shentsize: u16(58), shnum: u16(60), shstrndx: u16(62) } : { is64, littleEndian, shoff: u32(32), shentsize: u16(46), shnum: u16(48), shstrndx: u16(50) };
}
function parseSections(h, table) {
  const out = [];
  for (let i = 0; i < h.shnum && (i + 1) * h.shentsize <= table.length; i++) {
    const o = i * h.shentsize;
    const u32 = (x) => h.littleEndian ? table.readUInt32LE(o + x) : table.readUInt32BE(o + x);
    const u64 = (x) => Number(h.littleEndian ? table.readBigUInt64LE(o + x) : table.readBigUInt64BE(o + x));
    out.push(h.is64 ? { name: u32(0), offset: u64(24), size: u64(32) } : { name: u32(0), offset: u32(16), size: u32(20) });
  }
  return out;
}
function sectionNamedAt(h, sections, nameAt) {
  const strtab = sections[h.shstrndx];
  if (!strtab) return void 0;
  const indexes = new Set(nameAt.map((at) => at - strtab.offset));
  return sections.find((s, i) => i !== 0 && indexes.has(s.name));
}

// src/attest/sbom/gobuild.ts
var import_packageurl_js2 = __toESM(require_packageurl_js(), 1);
var GO_BUILDINFO_MAGIC = Buffer.from("\xFF Go buildinf:", "latin1");
var HEADER = 32;
var FLAG_INLINE_STRINGS = 2;
function uvarint(b, off) {
  let value = 0;
  for (let shift = 0, i = off; i < b.length && shift < 35; shift += 7, i++) {
    value += (b[i] & 127) * 2 ** shift;
    if (!(b[i] & 128)) return { value, next: i + 1 };
  }
  return void 0;
}
function inlineBytes(b, off) {
  const len = uvarint(b, off);
  if (!len || len.next + len.value > b.length) return void 0;
  return { bytes: b.subarray(len.next, len.next + len.value), next: len.next + len.value };
}
function parseGoBuildInfo(blob) {
  if (blob.length < HEADER || !blob.subarray(0, GO_BUILDINFO_MAGIC.length).equals(GO_BUILDINFO_MAGIC)) return void 0;
  const ptrSize = blob[14];
  const flags = blob[15];
  if (ptrSize !== 4 && ptrSize !== 8 || !(flags & FLAG_INLINE_STRINGS)) return void 0;
  const version = inlineBytes(blob, HEADER);
  const goVersion = version?.bytes.toString("utf8");
  if (!version || !goVersion || !/^go\d/.test(goVersion)) return void 0;
  const mod = inlineBytes(blob, version.next);
  if (!mod) return void 0;
  const m = mod.bytes.length >= 33 && mod.bytes[mod.bytes.length - 17] === 10 ? mod.bytes.subarray(16, mod.bytes.length - 16) : mod.bytes;
  return { goVersion, modinfo: m.toString("utf8") };
}
function goPurl(path, version) {
  const slash = path.lastIndexOf("/");
  const ns = slash > 0 ? path.slice(0, slash) : void 0;
  const name = slash > 0 ? path.slice(slash + 1) : path;
  return new import_packageurl_js2.PackageURL("golang", ns, name, version, void 0, void 0).toString();
}
function goPackages(binaryPath, info) {
  const out = [];
  const add = (name, version) => {
    const known = version && version !== "(devel)" ? version : void 0;
    out.push({ ecosystem: "golang", name, version: version || "(devel)", purl: goPurl(name, known), foundIn: binaryPath });
  };
  for (const line of info.modinfo.split("\n")) {
    const [kind, path, version = ""] = line.split("	");
    if (!path) continue;
    if (kind === "mod" || kind === "dep") add(path, version);
    else if (kind === "=>" && version && version !== "(devel)" && out.length) {
      out.pop();
      add(path, version);
    }
  }
  const go = /^go(\d+(?:\.\d+)*)/.exec(info.goVersion);
  if (go) out.push({ ecosystem: "golang", name: "stdlib", version: go[1], purl: goPurl("stdlib", go[1]), foundIn: binaryPath });
  return out;
}

// src/attest/sbom/regions.ts
var Region = class {
  constructor(start, length) {
    this.start = start;
    this.length = length;
    this.buf = Buffer.alloc(length);
  }
  start;
  length;
  buf;
  filled = 0;
  /** `chunk` holds the file's bytes from offset `at`. */
  feed(chunk, at) {
    const from = Math.max(this.start, at);
    const to = Math.min(this.start + this.length, at + chunk.length);
    if (to <= from) return;
    chunk.copy(this.buf, from - this.start, from - at, to - at);
    this.filled += to - from;
  }
  get done() {
    return this.filled >= this.length;
  }
};
var MarkerSearch = class {
  constructor(marker, max = 8) {
    this.marker = marker;
    this.max = max;
  }
  marker;
  max;
  carry = Buffer.alloc(0);
  found = [];
  /** `chunk` holds the file's bytes from offset `at`; returns the offsets found in it. */
  feed(chunk, at) {
    if (this.found.length >= this.max) return [];
    const hits = [];
    const add = (offset) => {
      if (this.found.length >= this.max) return;
      hits.push(offset);
      this.found.push(offset);
    };
    if (this.carry.length) {
      const seam = Buffer.concat([this.carry, chunk.subarray(0, this.marker.length - 1)]);
      for (let i = seam.indexOf(this.marker); i >= 0; i = seam.indexOf(this.marker, i + 1)) add(at - this.carry.length + i);
    }
    for (let i = chunk.indexOf(this.marker); i >= 0 && this.found.length < this.max; i = chunk.indexOf(this.marker, i + 1)) add(at + i);
    const keep = Math.min(chunk.length, this.marker.length - 1);
    this.carry = Buffer.from(chunk.subarray(chunk.length - keep));
    return hits;
  }
};

// src/attest/sbom/rpm.ts
var import_packageurl_js3 = __toESM(require_packageurl_js(), 1);

// src/attest/sbom/packages.ts
function parseOsRelease(text2) {
  const fields = /* @__PURE__ */ new Map();
  for (const raw of text2.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(raw.trim());
    if (!m) continue;
    fields.set(m[1], m[2].replace(/^(["'])(.*)\1$/, "$2"));
  }
  const id = fields.get("ID");
  if (!id) return void 0;
  return {
    id: id.toLowerCase(),
    ...fields.get("VERSION_ID") ? { versionId: fields.get("VERSION_ID") } : {},
    ...fields.get("PRETTY_NAME") ? { name: fields.get("PRETTY_NAME") } : {}
  };
}
function distroQualifier(os) {
  return os?.versionId ? `${os.id}-${os.versionId}` : void 0;
}
function parseStanzas(text2) {
  const out = [];
  for (const block of text2.split(/\n[ \t]*\n/)) {
    const fields = /* @__PURE__ */ new Map();
    let last;
    for (const line of block.split("\n")) {
      if (/^[ \t]/.test(line)) {
        if (last) fields.set(last, `${fields.get(last)}
${line.trim()}`);
        continue;
      }
      const i = line.indexOf(":");
      if (i <= 0) continue;
      last = line.slice(0, i).trim();
      if (!fields.has(last)) fields.set(last, line.slice(i + 1).trim());
    }
    if (fields.size) out.push(fields);
  }
  return out;
}

// src/attest/sbom/rpm.ts
var RPMDB_SQLITE = ["/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite"];
var TAG = { name: 1e3, version: 1001, release: 1002, epoch: 1003, license: 1014, arch: 1022 };
var TYPE_INT32 = 4;
var TYPE_STRING = 6;
var TYPE_I18NSTRING = 9;
function parseRpmHeader(blob) {
  const out = /* @__PURE__ */ new Map();
  if (blob.length < 8) return out;
  const il = blob.readUInt32BE(0);
  const dl = blob.readUInt32BE(4);
  const data = 8 + il * 16;
  if (il > 1e5 || data + dl > blob.length) return out;
  const wanted = new Set(Object.values(TAG));
  for (let i = 0; i < il; i++) {
    const e = 8 + i * 16;
    const tag = blob.readUInt32BE(e);
    const type = blob.readUInt32BE(e + 4);
    const off = blob.readInt32BE(e + 8);
    if (!wanted.has(tag) || off < 0 || off >= dl) continue;
    const at = data + off;
    if (type === TYPE_INT32 && at + 4 <= data + dl) out.set(tag, blob.readUInt32BE(at));
    else if (type === TYPE_STRING || type === TYPE_I18NSTRING) {
      const end = blob.indexOf(0, at);
      if (end > 0 && end <= data + dl) out.set(tag, blob.subarray(at, end).toString("utf8"));
    }
  }
  return out;
}
function rpmPackage(h, os, foundIn) {
  const name = h.get(TAG.name);
  const version = h.get(TAG.version);
  const release = h.get(TAG.release);
  if (typeof name !== "string" || typeof version !== "string" || name === "gpg-pubkey") return void 0;
  const full = typeof release === "string" ? `${version}-${release}` : version;
  const arch = h.get(TAG.arch);
  const epoch = h.get(TAG.epoch);
  const distro = distroQualifier(os);
  const qualifiers = {
    ...typeof arch === "string" ? { arch } : {},
    ...typeof epoch === "number" && epoch > 0 ? { epoch: String(epoch) } : {},
    ...distro ? { distro } : {}
  };
  const license = h.get(TAG.license);
  return {
    ecosystem: "rpm",
    name,
    version: typeof epoch === "number" && epoch > 0 ? `${epoch}:${full}` : full,
    purl: new import_packageurl_js3.PackageURL("rpm", os?.id, name, full, Object.keys(qualifiers).length ? qualifiers : void 0, void 0).toString(),
    ...typeof license === "string" && license ? { license } : {},
    foundIn
  };
}
async function readRpmSqlite(file, os, foundIn) {
  let sqlite;
  try {
    sqlite = await import("node:sqlite");
  } catch {
    throw new Error(`node:sqlite is not available in Node ${process.versions.node} (it needs Node 22.13 or later)`);
  }
  const db = new sqlite.DatabaseSync(file);
  try {
    const out = [];
    for (const row of db.prepare("SELECT blob FROM Packages").iterate()) {
      const blob = row.blob;
      if (!blob) continue;
      const p = rpmPackage(parseRpmHeader(Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)), os, foundIn);
      if (p) out.push(p);
    }
    return out;
  } finally {
    db.close();
  }
}

// src/attest/sbom/executables.ts
var GO_BLOB_KEEP = 256 << 10;
var MAX_SECTION_TABLE = 1 << 20;
var MAX_DEP_V0 = 8 << 20;
var DEP_V0_NAME = Buffer.from(`\0${DEP_V0_SECTION}\0`, "latin1");
async function probeExecutable(path, body, size) {
  const head = new Region(0, Math.min(ELF_HEADER_SIZE, size));
  let table;
  let elf = false;
  const go = new MarkerSearch(GO_BUILDINFO_MAGIC, 4);
  const goBlobs = [];
  const depName = new MarkerSearch(DEP_V0_NAME, 4);
  let at = 0;
  let header;
  for await (const chunk of body) {
    if (!head.done) {
      head.feed(chunk, at);
      if (head.done) {
        elf = isElf(head.buf);
        header = parseElfHeader(head.buf);
        const len = header ? header.shnum * header.shentsize : 0;
        if (header && len > 0 && len <= MAX_SECTION_TABLE && header.shoff + len <= size) table = new Region(header.shoff, len);
      }
    }
    if (head.done && !elf) {
      at += chunk.length;
      continue;
    }
    for (const hit of go.feed(chunk, at)) goBlobs.push(new Region(hit, Math.min(GO_BLOB_KEEP, size - hit)));
    for (const r of goBlobs) r.feed(chunk, at);
    depName.feed(chunk, at);
    table?.feed(chunk, at);
    at += chunk.length;
  }
  const packages = [];
  for (const r of goBlobs) {
    const info = parseGoBuildInfo(r.buf);
    if (info) {
      packages.push(...goPackages(path, info));
      break;
    }
  }
  if (!header || !table?.done || !depName.found.length) return { packages };
  const depV0 = sectionNamedAt(
    header,
    parseSections(header, table.buf),
    depName.found.map((o) => o + 1)
  );
  return { packages, ...depV0 && depV0.size > 0 && depV0.size <= MAX_DEP_V0 ? { depV0 } : {} };
}
async function eachFile(layer, want, onFile) {
  for await (const { header, body } of readTar(decompressedChunks(await layer()))) {
    const path = imagePath(header.name);
    if (header.type === "file" && want(path, header.mode, header.size)) await onFile(path, body, header.size);
  }
}
var LayerExecutables = class {
  constructor(select) {
    this.select = select;
  }
  select;
  facts = /* @__PURE__ */ new Map();
  want(path, mode, size) {
    return this.select(path, mode, size);
  }
  async file(path, body, size) {
    this.facts.set(path, await probeExecutable(path, body, size));
  }
  /** Once the layer is read: `layer` is opened again only when a binary holds a `.dep-v0` section. */
  async result(layer) {
    const withDeps = [...this.facts].filter(([, f]) => f.depV0);
    if (withDeps.length) {
      const sections = new Map(withDeps.map(([p, f]) => [p, new Region(f.depV0.offset, f.depV0.size)]));
      await eachFile(
        layer,
        (p) => sections.has(p),
        async (path, body) => {
          let at = 0;
          for await (const chunk of body) {
            sections.get(path).feed(chunk, at);
            at += chunk.length;
          }
        }
      );
      for (const [path, r] of sections) {
        const crates = r.done ? parseCargoAuditable(path, r.buf) : void 0;
        if (crates) this.facts.get(path).packages.push(...crates);
      }
    }
    return Object.fromEntries([...this.facts].map(([p, f]) => [p, f.packages]));
  }
};
async function executablesOfLayer(layer, want) {
  const probe = new LayerExecutables(want);
  await eachFile(layer, want, (path, body, size) => probe.file(path, body, size));
  return await probe.result(layer);
}
function packagesOfExecutables(perLayer, executables) {
  const out = [];
  for (const path of executables) {
    for (let i = perLayer.length - 1; i >= 0; i--) {
      const found = perLayer[i][path];
      if (!found) continue;
      out.push(...found);
      break;
    }
  }
  return out;
}
async function rpmPackagesOf(layers, path, os) {
  const scratch = await mkdtemp(join(tmpdir(), "oci-build-rpmdb-"));
  try {
    const file = join(scratch, "rpmdb.sqlite");
    for (let i = layers.length - 1; i >= 0; i--) {
      let found = false;
      await eachFile(
        layers[i],
        (p) => p === path,
        async (_p, body) => {
          await pipeline(Readable.from(body), createWriteStream(file));
          found = true;
        }
      );
      if (found) break;
    }
    return await readRpmSqlite(file, os, path);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

// src/attest/sbom/apk.ts
var import_packageurl_js4 = __toESM(require_packageurl_js(), 1);
var APK_INSTALLED = "/lib/apk/db/installed";
function parseApkInstalled(text2, os) {
  const out = [];
  const namespace = os?.id ?? "alpine";
  const distro = distroQualifier(os);
  for (const block of text2.split(/\n\s*\n/)) {
    const f = /* @__PURE__ */ new Map();
    for (const line of block.split("\n")) {
      const m = /^([A-Za-z]):(.*)$/.exec(line);
      if (m && !f.has(m[1])) f.set(m[1], m[2]);
    }
    const name = f.get("P");
    const version = f.get("V");
    if (!name || !version) continue;
    const qualifiers = {};
    if (f.get("A")) qualifiers.arch = f.get("A");
    if (distro) qualifiers.distro = distro;
    if (f.get("o") && f.get("o") !== name) qualifiers.upstream = f.get("o");
    out.push({
      ecosystem: "apk",
      name,
      version,
      purl: new import_packageurl_js4.PackageURL("apk", namespace, name, version, qualifiers, void 0).toString(),
      ...f.get("L") ? { license: f.get("L") } : {},
      foundIn: APK_INSTALLED
    });
  }
  return out;
}

// src/attest/sbom/dpkg.ts
var import_packageurl_js5 = __toESM(require_packageurl_js(), 1);
var DPKG_STATUS = "/var/lib/dpkg/status";
function parseDpkgStatus(text2, os) {
  const out = [];
  const namespace = os?.id ?? "debian";
  const distro = distroQualifier(os);
  for (const f of parseStanzas(text2)) {
    const name = f.get("Package");
    const version = f.get("Version");
    const status = (f.get("Status") ?? "").split(/\s+/);
    if (!name || !version || status[2] !== "installed") continue;
    const qualifiers = {};
    const arch = f.get("Architecture");
    if (arch) qualifiers.arch = arch;
    if (distro) qualifiers.distro = distro;
    const upstream = /^(\S+)/.exec(f.get("Source") ?? "")?.[1];
    if (upstream && upstream !== name) qualifiers.upstream = upstream;
    out.push({
      ecosystem: "deb",
      name,
      version,
      purl: new import_packageurl_js5.PackageURL("deb", namespace, name, version, qualifiers, void 0).toString(),
      foundIn: DPKG_STATUS
    });
  }
  return out;
}

// src/attest/sbom/lang.ts
var import_packageurl_js6 = __toESM(require_packageurl_js(), 1);
var NODE_MANIFEST = /\/node_modules\/(?:@[^/]+\/)?[^/@.][^/]*\/package\.json$/;
var PYTHON_METADATA = /\/[^/]+\.dist-info\/METADATA$/;
function licenseOf(v) {
  if (typeof v === "string" && v.trim()) return v.trim();
  if (v && typeof v === "object" && !Array.isArray(v) && typeof v.type === "string")
    return v.type;
  return void 0;
}
function parseNodePackage(path, text2) {
  let doc;
  try {
    doc = JSON.parse(text2);
  } catch {
    return void 0;
  }
  const { name, version } = doc;
  if (typeof name !== "string" || typeof version !== "string" || !name || !version) return void 0;
  const scoped = /^(@[^/]+)\/(.+)$/.exec(name);
  const purl = new import_packageurl_js6.PackageURL("npm", scoped ? scoped[1] : void 0, scoped ? scoped[2] : name, version, void 0, void 0).toString();
  const license = licenseOf(doc.license);
  return { ecosystem: "npm", name, version, purl, ...license ? { license } : {}, foundIn: path };
}
function normalizePythonName(name) {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}
function parsePythonMetadata(path, text2) {
  const header = parseStanzas(text2.split(/\r?\n\r?\n/, 1)[0] ?? "")[0];
  const name = header?.get("Name");
  const version = header?.get("Version");
  if (!header || !name || !version) return void 0;
  const license = header.get("License-Expression") ?? (header.get("License") && header.get("License") !== "UNKNOWN" && !header.get("License").includes("\n") ? header.get("License") : void 0);
  return {
    ecosystem: "pypi",
    name,
    version,
    purl: new import_packageurl_js6.PackageURL("pypi", void 0, normalizePythonName(name), version, void 0, void 0).toString(),
    ...license ? { license } : {},
    foundIn: path
  };
}

// src/attest/sbom/scan.ts
var OS_RELEASE = ["/etc/os-release", "/usr/lib/os-release"];
var FIXED_FILES = [...OS_RELEASE, DPKG_STATUS, APK_INSTALLED];
var MAX_LANGUAGE_FILES = 2e4;
var MAX_LANGUAGE_FILE_SIZE = 1 << 20;
var MAX_EXECUTABLES = 2e4;
var MIN_EXECUTABLE_SIZE = 4096;
var RPM_BERKELEY_DB = ["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"];
function isExecutableCandidate(mode, size) {
  return (mode & 73) !== 0 && size >= MIN_EXECUTABLE_SIZE;
}
function keepForBigFiles(path, info) {
  return isExecutableCandidate(info.mode, info.size ?? 0) || RPMDB_SQLITE.includes(path) || RPM_BERKELEY_DB.includes(path);
}
function bigFilesOf(paths) {
  const executables = /* @__PURE__ */ new Set();
  const files = /* @__PURE__ */ new Set();
  for (const [path, info] of paths) {
    if (info.type !== "file") continue;
    files.add(path);
    if (executables.size < MAX_EXECUTABLES && isExecutableCandidate(info.mode, info.size ?? 0)) executables.add(path);
  }
  const rpmdb = RPMDB_SQLITE.find((p) => files.has(p));
  const berkeley = RPM_BERKELEY_DB.find((p) => files.has(p));
  const notes = berkeley && !rpmdb ? [`rpm packages not listed: ${berkeley} is a BerkeleyDB rpm database, which is not read (rpmdb.sqlite is)`] : [];
  return { executables, ...rpmdb ? { rpmdb } : {}, notes };
}
function withPackages(found, more, notes) {
  const all = [...found.notes ?? [], ...notes];
  return { ...found, packages: dedupe([...found.packages, ...more]), ...all.length ? { notes: all } : {} };
}
var text = (b) => b ? b.toString("utf8") : void 0;
var isManifest = (path) => NODE_MANIFEST.test(path) || PYTHON_METADATA.test(path);
function sbomWants(path, size) {
  return FIXED_FILES.includes(path) || size <= MAX_LANGUAGE_FILE_SIZE && isManifest(path);
}
function manifestPaths(paths) {
  const out = [];
  for (const [path, info] of paths) {
    if (info.type !== "file" || (info.size ?? 0) > MAX_LANGUAGE_FILE_SIZE) continue;
    if (isManifest(path)) out.push(path);
    if (out.length >= MAX_LANGUAGE_FILES) break;
  }
  return out;
}
function packagesOf(fixed, manifests) {
  const osText = OS_RELEASE.map((p) => text(fixed(p))).find((t) => t !== void 0);
  const os = osText ? parseOsRelease(osText) : void 0;
  const packages = [];
  const dpkg = text(fixed(DPKG_STATUS));
  if (dpkg) packages.push(...parseDpkgStatus(dpkg, os));
  const apk = text(fixed(APK_INSTALLED));
  if (apk) packages.push(...parseApkInstalled(apk, os));
  for (const [path, content] of manifests) {
    const t = text(content);
    if (t === void 0) continue;
    const found = NODE_MANIFEST.test(path) ? parseNodePackage(path, t) : parsePythonMetadata(path, t);
    if (found) packages.push(found);
  }
  return { ...os ? { os } : {}, packages: dedupe(packages) };
}
function packagesOfTree(tree) {
  const notes = [];
  const read = (path) => {
    const r = tree.resolveFile(path);
    if ("content" in r) return r.content;
    notes.push(`${path} not read: it is a link to ${r.need}, a file the scan does not keep`);
    return null;
  };
  const fixed = new Map(FIXED_FILES.map((p) => [p, read(p)]));
  const manifests = new Map(manifestPaths(tree.list()).map((p) => [p, read(p)]));
  return withPackages(
    packagesOf((p) => fixed.get(p), manifests),
    [],
    notes
  );
}
function dedupe(packages) {
  const byPurl = /* @__PURE__ */ new Map();
  for (const p of packages) if (!byPurl.has(p.purl)) byPurl.set(p.purl, p);
  return [...byPurl.values()].sort((a, b) => a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0);
}

// src/attest/sbom/inventory.ts
var SCANNER = "sbom-inventory-2";
var SbomInventory = class {
  /** `dir`: where inventories and snapshots persist (none: this run only); `toolVersion` joins the key. */
  constructor(dir, toolVersion) {
    this.dir = dir;
    this.toolVersion = toolVersion;
  }
  dir;
  toolVersion;
  stats = { images: 0, fromCache: 0, fromReferrer: 0, layersRead: 0, bytesRead: 0, layersShared: 0 };
  /** What the SBOM needs of the layers another pass of this run read (by diffID): applied, not read again. */
  sharedChanges = /* @__PURE__ */ new Map();
  packagesByKey = /* @__PURE__ */ new Map();
  treesByKey = /* @__PURE__ */ new Map();
  executablesByKey = /* @__PURE__ */ new Map();
  /** Whether the packages of these layers are known (in memory or on disk): `packages` then reads no layer. */
  async knows(layers) {
    return await this.load(this.packagesByKey, this.keyOf(layers), "packages") !== void 0;
  }
  /** Counts an image whose SBOM was taken from the registry instead of made from its layers. */
  reusedFromReferrer() {
    this.stats.images++;
    this.stats.fromReferrer++;
  }
  async packages(layers) {
    this.stats.images++;
    const key = this.keyOf(layers);
    const known = await this.load(this.packagesByKey, key, "packages");
    if (known) {
      this.stats.fromCache++;
      return known;
    }
    const found = await this.scan(layers);
    if (found.notes?.length) this.packagesByKey.set(key, found);
    else await this.save(this.packagesByKey, key, "packages", found);
    return found;
  }
  async scan(layers) {
    let from = 0;
    let tree = new FsTree();
    for (let k = layers.length - 1; k > 0; k--) {
      const snap = await this.load(this.treesByKey, this.keyOf(layers.slice(0, k)), "tree");
      if (!snap) continue;
      tree = FsTree.fromSnapshot(snap);
      from = k;
      break;
    }
    const baseEnd = layers.filter((l) => l.base).length;
    for (let i = from; i < layers.length; i++) {
      const layer = layers[i];
      const shared = this.sharedChanges.get(layer.diffId);
      if (shared) {
        tree.apply(shared);
        this.stats.layersShared++;
      } else {
        await applyLayer(
          tree,
          this.counted(layer.open),
          `layer ${i + 1} of ${layers.length}`,
          sbomWants,
          void 0,
          await this.executablesProbe(layer)
        );
      }
      if (i + 1 === baseEnd && baseEnd < layers.length) await this.saveTree(layers.slice(0, baseEnd), tree);
    }
    const found = packagesOfTree(tree);
    await this.saveTree(layers, tree);
    return await this.withBigFiles(found, layers, tree);
  }
  /**
   * For the builder's check of a registry record's layer against its recorded diffID: that one
   * read also keeps what the SBOM needs of the layer (its wanted files, its executables' data).
   * False when the layer does not unpack to `diffId` (or cannot be read): nothing is kept then.
   */
  recordLayerCheck = async (diffId, open) => {
    try {
      const probe = await this.executablesProbe({ diffId, open });
      const changes = await applyLayer(new FsTree(), open, `layer ${diffId}`, sbomWants, diffId, probe);
      this.sharedChanges.set(diffId, changes);
      return true;
    } catch {
      return false;
    }
  };
  /**
   * Go build info, cargo-auditable data and the rpm database of the final tree. Executables are
   * probed once per layer (kept per diffID: a new top layer does not re-read the base's binaries).
   */
  async withBigFiles(found, layers, tree) {
    const big = bigFilesOf(tree.list());
    const notes = [...big.notes];
    const more = [];
    if (big.executables.size) {
      const perLayer = [];
      for (const layer of layers) perLayer.push(await this.executablesOf(layer));
      more.push(...packagesOfExecutables(perLayer, big.executables));
    }
    if (big.rpmdb) {
      try {
        more.push(
          ...await rpmPackagesOf(
            layers.map((l) => this.counted(l.open)),
            big.rpmdb,
            found.os
          )
        );
      } catch (e) {
        notes.push(`rpm packages not listed: ${big.rpmdb}: ${e.message}`);
      }
    }
    return withPackages(found, more, notes);
  }
  /**
   * The probe of one layer's executables for the pass that reads it (none when that layer's are
   * known); it keeps the result per diffID once the layer is read.
   */
  async executablesProbe(layer) {
    const key = this.executablesKey(layer);
    if (await this.load(this.executablesByKey, key, "executables")) return void 0;
    const probe = new LayerExecutables((_p, mode, size) => isExecutableCandidate(mode, size));
    return {
      want: (path, mode, size) => probe.want(path, mode, size),
      file: (path, body, size) => probe.file(path, body, size),
      end: async () => this.save(this.executablesByKey, key, "executables", await probe.result(this.counted(layer.open)))
    };
  }
  async executablesOf(layer) {
    const key = this.executablesKey(layer);
    const known = await this.load(this.executablesByKey, key, "executables");
    if (known) return known;
    const found = await executablesOfLayer(this.counted(layer.open), (_p, mode, size) => isExecutableCandidate(mode, size));
    await this.save(this.executablesByKey, key, "executables", found);
    return found;
  }
  executablesKey(layer) {
    return digestHex(sha256([SCANNER, this.toolVersion, "executables", layer.diffId].join("\n")));
  }
  /**
   * For the base scan: the tree of a base's layers, built with `sbomWants` among its files, and
   * each layer's executables probed in that same pass.
   */
  baseTreeReader = {
    want: sbomWants,
    probe: (diffId, open) => this.executablesProbe({ diffId, open }),
    tree: async (diffIds, tree) => {
      if (await this.load(this.treesByKey, this.keyOfDiffIds(diffIds), "tree")) return;
      await this.save(this.treesByKey, this.keyOfDiffIds(diffIds), "tree", tree.snapshot(keepForBigFiles));
    }
  };
  keyOf(layers) {
    return this.keyOfDiffIds(layers.map((l) => l.diffId));
  }
  keyOfDiffIds(diffIds) {
    return digestHex(sha256([SCANNER, this.toolVersion, ...diffIds].join("\n")));
  }
  counted(open) {
    return async () => {
      this.stats.layersRead++;
      const src = await open();
      const count = new Transform({
        transform: (chunk, _enc, done) => {
          this.stats.bytesRead += chunk.length;
          done(null, chunk);
        }
      });
      src.on("error", (e) => count.destroy(e));
      return src.pipe(count);
    };
  }
  async saveTree(layers, tree) {
    await this.save(this.treesByKey, this.keyOf(layers), "tree", tree.snapshot(keepForBigFiles));
  }
  file(key, kind) {
    return this.dir ? join2(this.dir, `${key}.${kind}.json`) : void 0;
  }
  async load(memory, key, kind) {
    const hit = memory.get(key);
    if (hit) return hit;
    const file = this.file(key, kind);
    if (!file) return void 0;
    try {
      const value = JSON.parse(await readFile(file, "utf8"));
      memory.set(key, value);
      return value;
    } catch {
      return void 0;
    }
  }
  async save(memory, key, kind, value) {
    memory.set(key, value);
    const file = this.file(key, kind);
    if (!file) return;
    try {
      await writeAtomic(file, JSON.stringify(value));
    } catch {
    }
  }
};
export {
  SbomInventory
};
