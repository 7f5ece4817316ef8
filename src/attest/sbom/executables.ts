/**
 * Package records inside files too big to buffer: Go build info and cargo-auditable's `.dep-v0`
 * in executables, and the rpm sqlite database. Each candidate is streamed from the layers (the
 * last layer writing a path wins); of an executable only the ELF header, its section table and
 * the build-info blob are kept, and the database is spooled to a scratch file for sqlite.
 *
 * `.dep-v0`'s bytes come before the section table that says where they are, so a binary whose
 * name table holds `.dep-v0` gets a second look: only the layer that holds it is read again,
 * and only that section's bytes kept.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressedChunks } from '../../layer/decompress.js';
import { imagePath, type LayerProbe, type LayerSource } from '../../layer/reader.js';
import { readTar } from '../../layer/tarstream.js';
import { DEP_V0_SECTION, parseCargoAuditable } from './cargo.js';
import { ELF_HEADER_SIZE, isElf, parseElfHeader, parseSections, sectionNamedAt, type ElfSection } from './elf.js';
import { GO_BUILDINFO_MAGIC, goPackages, parseGoBuildInfo } from './gobuild.js';
import type { FoundPackage, OsRelease } from './packages.js';
import { MarkerSearch, Region } from './regions.js';
import { readRpmSqlite } from './rpm.js';

/** Build info of a huge module graph is still far below this; a blob is parsed from what was kept. */
const GO_BLOB_KEEP = 256 << 10;
const MAX_SECTION_TABLE = 1 << 20;
const MAX_DEP_V0 = 8 << 20;
const DEP_V0_NAME = Buffer.from(`\0${DEP_V0_SECTION}\0`, 'latin1');

interface ExecutableFacts {
  packages: FoundPackage[];
  /** Where `.dep-v0` is, when the section table names it. */
  depV0?: ElfSection;
}

/** Streams one executable: its Go build info, and where a `.dep-v0` section is. Never holds more than the regions. */
async function probeExecutable(path: string, body: AsyncIterable<Buffer>, size: number): Promise<ExecutableFacts> {
  const head = new Region(0, Math.min(ELF_HEADER_SIZE, size));
  let table: Region | undefined;
  let elf = false;
  const go = new MarkerSearch(GO_BUILDINFO_MAGIC, 4);
  const goBlobs: Region[] = [];
  const depName = new MarkerSearch(DEP_V0_NAME, 4);
  let at = 0;
  let header: ReturnType<typeof parseElfHeader>;
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
      continue; // not ELF: the rest streams past unread
    }
    for (const hit of go.feed(chunk, at)) goBlobs.push(new Region(hit, Math.min(GO_BLOB_KEEP, size - hit)));
    for (const r of goBlobs) r.feed(chunk, at);
    depName.feed(chunk, at);
    table?.feed(chunk, at);
    at += chunk.length;
  }
  const packages: FoundPackage[] = [];
  // The first blob that parses: the magic also appears as a string constant in tools that read build info.
  for (const r of goBlobs) {
    const info = parseGoBuildInfo(r.buf);
    if (info) {
      packages.push(...goPackages(path, info));
      break;
    }
  }
  if (!header || !table?.done || !depName.found.length) return { packages };
  // The name string starts one byte after the NUL that ends the one before it.
  const depV0 = sectionNamedAt(
    header,
    parseSections(header, table.buf),
    depName.found.map((o) => o + 1),
  );
  return { packages, ...(depV0 && depV0.size > 0 && depV0.size <= MAX_DEP_V0 ? { depV0 } : {}) };
}

/** Which regular files of a layer to look into: path, mode, size. */
export type WantExecutable = (path: string, mode: number, size: number) => boolean;

/** Calls `onFile` for each regular-file entry of one layer that `want` selects. */
async function eachFile(
  layer: LayerSource,
  want: WantExecutable,
  onFile: (path: string, body: AsyncIterable<Buffer>, size: number) => Promise<void>,
): Promise<void> {
  for await (const { header, body } of readTar(decompressedChunks(await layer()))) {
    const path = imagePath(header.name);
    if (header.type === 'file' && want(path, header.mode, header.size)) await onFile(path, body, header.size);
  }
}

/**
 * The executables of one layer, probed as whoever reads the layer streams them by (the tree's
 * pass, through readLayerChanges' probe hook, or a pass of its own): every probed path is listed,
 * with no packages when it holds none, so a higher layer's plain binary hides a lower Go program.
 * Depends on the layer's bytes only: callers may keep the result per diffID.
 */
export class LayerExecutables implements LayerProbe {
  private readonly facts = new Map<string, ExecutableFacts>();

  constructor(private readonly select: WantExecutable) {}

  want(path: string, mode: number, size: number): boolean {
    return this.select(path, mode, size);
  }

  async file(path: string, body: AsyncIterable<Buffer>, size: number): Promise<void> {
    this.facts.set(path, await probeExecutable(path, body, size));
  }

  /** Once the layer is read: `layer` is opened again only when a binary holds a `.dep-v0` section. */
  async result(layer: LayerSource): Promise<Record<string, FoundPackage[]>> {
    const withDeps = [...this.facts].filter(([, f]) => f.depV0);
    if (withDeps.length) {
      // The second look: only this layer, only the `.dep-v0` sections' bytes kept.
      const sections = new Map(withDeps.map(([p, f]) => [p, new Region(f.depV0!.offset, f.depV0!.size)]));
      await eachFile(
        layer,
        (p) => sections.has(p),
        async (path, body) => {
          let at = 0;
          for await (const chunk of body) {
            sections.get(path)!.feed(chunk, at);
            at += chunk.length;
          }
        },
      );
      for (const [path, r] of sections) {
        const crates = r.done ? parseCargoAuditable(path, r.buf) : undefined;
        if (crates) this.facts.get(path)!.packages.push(...crates);
      }
    }
    return Object.fromEntries([...this.facts].map(([p, f]) => [p, f.packages]));
  }
}

/** The executables of one layer (see LayerExecutables), in a pass of its own. */
export async function executablesOfLayer(layer: LayerSource, want: WantExecutable): Promise<Record<string, FoundPackage[]>> {
  const probe = new LayerExecutables(want);
  await eachFile(layer, want, (path, body, size) => probe.file(path, body, size));
  return await probe.result(layer);
}

/** The packages the final file system's executables record: of each path, the topmost layer's probe. */
export function packagesOfExecutables(
  perLayer: readonly Record<string, FoundPackage[]>[],
  executables: ReadonlySet<string>,
): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const path of executables) {
    for (let i = perLayer.length - 1; i >= 0; i--) {
      const found = perLayer[i]![path];
      if (!found) continue;
      out.push(...found);
      break;
    }
  }
  return out;
}

/** The rpm packages of the sqlite database at `path` in the final file system (the last layer writing it wins). */
export async function rpmPackagesOf(layers: readonly LayerSource[], path: string, os: OsRelease | undefined): Promise<FoundPackage[]> {
  const scratch = await mkdtemp(join(tmpdir(), 'oci-build-rpmdb-'));
  try {
    const file = join(scratch, 'rpmdb.sqlite');
    // The topmost layer holding it is what is read: from the top down, the first that writes it
    // (the final file system has the path, so no layer above wrote a whiteout over that copy).
    for (let i = layers.length - 1; i >= 0; i--) {
      let found = false;
      await eachFile(
        layers[i]!,
        (p) => p === path,
        async (_p, body) => {
          await pipeline(Readable.from(body), createWriteStream(file));
          found = true;
        },
      );
      if (found) break;
    }
    return await readRpmSqlite(file, os, path);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
