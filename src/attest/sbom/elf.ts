/**
 * Just enough ELF to find a section by name: the header's section-table fields, and the table
 * itself. The table sits near the end of the file, after the sections' data, so a streamed read
 * learns where a section is only once it has gone by (see executables.ts for the second look).
 */

export interface ElfHeader {
  is64: boolean;
  littleEndian: boolean;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ElfSection {
  name: number;
  offset: number;
  size: number;
}

export const ELF_HEADER_SIZE = 64;

export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head.subarray(1, 4).toString('latin1') === 'ELF';
}

export function parseElfHeader(head: Buffer): ElfHeader | undefined {
  if (!isElf(head) || head.length < ELF_HEADER_SIZE) return undefined;
  const is64 = head[4] === 2;
  const littleEndian = head[5] === 1;
  const u16 = (o: number) => (littleEndian ? head.readUInt16LE(o) : head.readUInt16BE(o));
  const u32 = (o: number) => (littleEndian ? head.readUInt32LE(o) : head.readUInt32BE(o));
  const u64 = (o: number) => Number(littleEndian ? head.readBigUInt64LE(o) : head.readBigUInt64BE(o));
  return is64
    ? { is64, littleEndian, shoff: u64(0x28), shentsize: u16(0x3a), shnum: u16(0x3c), shstrndx: u16(0x3e) }
    : { is64, littleEndian, shoff: u32(0x20), shentsize: u16(0x2e), shnum: u16(0x30), shstrndx: u16(0x32) };
}

export function parseSections(h: ElfHeader, table: Buffer): ElfSection[] {
  const out: ElfSection[] = [];
  for (let i = 0; i < h.shnum && (i + 1) * h.shentsize <= table.length; i++) {
    const o = i * h.shentsize;
    const u32 = (x: number) => (h.littleEndian ? table.readUInt32LE(o + x) : table.readUInt32BE(o + x));
    const u64 = (x: number) => Number(h.littleEndian ? table.readBigUInt64LE(o + x) : table.readBigUInt64BE(o + x));
    out.push(h.is64 ? { name: u32(0), offset: u64(24), size: u64(32) } : { name: u32(0), offset: u32(16), size: u32(20) });
  }
  return out;
}

/**
 * The section whose name string starts at file offset `nameAt` (where the name was seen in the
 * stream): its name index is that offset minus the section-name table's offset.
 */
export function sectionNamedAt(h: ElfHeader, sections: ElfSection[], nameAt: readonly number[]): ElfSection | undefined {
  const strtab = sections[h.shstrndx];
  if (!strtab) return undefined;
  const indexes = new Set(nameAt.map((at) => at - strtab.offset));
  return sections.find((s, i) => i !== 0 && indexes.has(s.name));
}
