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
import { imagePath, type LayerSource } from '../../layer/reader.js';
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
  layer: number;
  packages: FoundPackage[];
  /** Where `.dep-v0` is, when the section table names it. */
  depV0?: ElfSection;
}

/** Streams one executable: its Go build info, and where a `.dep-v0` section is. Never holds more than the regions. */
async function probeExecutable(path: string, body: AsyncIterable<Buffer>, size: number): Promise<Omit<ExecutableFacts, 'layer'>> {
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

export interface BigFileCandidates {
  executables: Set<string>;
  rpmdb?: string;
}

/** Calls `onFile` for each regular-file entry of each layer (bottom first) that `want` selects. */
async function eachFile(
  layers: readonly LayerSource[],
  only: ReadonlySet<number> | undefined,
  want: (path: string) => boolean,
  onFile: (layer: number, path: string, body: AsyncIterable<Buffer>, size: number) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < layers.length; i++) {
    if (only && !only.has(i)) continue;
    for await (const { header, body } of readTar(decompressedChunks(await layers[i]!()))) {
      const path = imagePath(header.name);
      if (header.type === 'file' && want(path)) await onFile(i, path, body, header.size);
    }
  }
}

/** The packages these big files record (Go modules, crates, rpm packages); `notes` say what could not be read. */
export async function scanBigFiles(
  layers: readonly LayerSource[],
  c: BigFileCandidates,
  os: OsRelease | undefined,
): Promise<{ packages: FoundPackage[]; notes: string[] }> {
  const facts = new Map<string, ExecutableFacts>();
  const notes: string[] = [];
  const scratch = c.rpmdb ? await mkdtemp(join(tmpdir(), 'oci-build-rpmdb-')) : undefined;
  try {
    await eachFile(
      layers,
      undefined,
      (p) => c.executables.has(p) || p === c.rpmdb,
      async (layer, path, body, size) => {
        if (path === c.rpmdb) await pipeline(Readable.from(body), createWriteStream(join(scratch!, 'rpmdb.sqlite')));
        else facts.set(path, { layer, ...(await probeExecutable(path, body, size)) });
      },
    );
    const withDeps = [...facts].filter(([, f]) => f.depV0);
    if (withDeps.length) {
      const sections = new Map(withDeps.map(([p, f]) => [p, new Region(f.depV0!.offset, f.depV0!.size)]));
      await eachFile(
        layers,
        new Set(withDeps.map(([, f]) => f.layer)),
        (p) => sections.has(p),
        async (layer, path, body) => {
          if (facts.get(path)!.layer !== layer) return;
          let at = 0;
          for await (const chunk of body) {
            sections.get(path)!.feed(chunk, at);
            at += chunk.length;
          }
        },
      );
      for (const [path, r] of sections) {
        const crates = r.done ? parseCargoAuditable(path, r.buf) : undefined;
        if (crates) facts.get(path)!.packages.push(...crates);
      }
    }
    const packages = [...facts.values()].flatMap((f) => f.packages);
    if (c.rpmdb) {
      try {
        packages.push(...(await readRpmSqlite(join(scratch!, 'rpmdb.sqlite'), os, c.rpmdb)));
      } catch (e) {
        notes.push(`rpm packages not listed: ${c.rpmdb}: ${(e as Error).message}`);
      }
    }
    return { packages, notes };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
