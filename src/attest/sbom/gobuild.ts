/**
 * Go's build info, as the linker writes it into every Go binary since Go 1.18: a 32-byte header
 * starting `\xff Go buildinf:` (then pointer size, flags), and with the "inline strings" flag two
 * varint-length-prefixed strings, the Go version and the module info (`path`, `mod`, `dep`, `=>`
 * lines between two 16-byte sentinels). The older pointer form (Go < 1.18) is not read.
 */
import { PackageURL } from 'packageurl-js';
import type { FoundPackage } from './packages.js';

export const GO_BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER = 32;
const FLAG_INLINE_STRINGS = 0x2;

/** An unsigned LEB128 varint at `off`; undefined when it runs past the buffer. */
function uvarint(b: Buffer, off: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let shift = 0, i = off; i < b.length && shift < 35; shift += 7, i++) {
    value += (b[i]! & 0x7f) * 2 ** shift;
    if (!(b[i]! & 0x80)) return { value, next: i + 1 };
  }
  return undefined;
}

function inlineBytes(b: Buffer, off: number): { bytes: Buffer; next: number } | undefined {
  const len = uvarint(b, off);
  if (!len || len.next + len.value > b.length) return undefined;
  return { bytes: b.subarray(len.next, len.next + len.value), next: len.next + len.value };
}

/** The Go version and module info of a build-info blob (starting at the magic); undefined when it is not one. */
export function parseGoBuildInfo(blob: Buffer): { goVersion: string; modinfo: string } | undefined {
  if (blob.length < HEADER || !blob.subarray(0, GO_BUILDINFO_MAGIC.length).equals(GO_BUILDINFO_MAGIC)) return undefined;
  const ptrSize = blob[14];
  const flags = blob[15]!;
  if ((ptrSize !== 4 && ptrSize !== 8) || !(flags & FLAG_INLINE_STRINGS)) return undefined;
  const version = inlineBytes(blob, HEADER);
  const goVersion = version?.bytes.toString('utf8');
  if (!version || !goVersion || !/^go\d/.test(goVersion)) return undefined;
  const mod = inlineBytes(blob, version.next);
  if (!mod) return undefined;
  // 16-byte sentinels around the text, as Go's debug/buildinfo strips them.
  const m = mod.bytes.length >= 33 && mod.bytes[mod.bytes.length - 17] === 0x0a ? mod.bytes.subarray(16, mod.bytes.length - 16) : mod.bytes;
  return { goVersion, modinfo: m.toString('utf8') };
}

function goPurl(path: string, version: string | undefined): string {
  const slash = path.lastIndexOf('/');
  const ns = slash > 0 ? path.slice(0, slash) : undefined;
  const name = slash > 0 ? path.slice(slash + 1) : path;
  return new PackageURL('golang', ns, name, version, undefined, undefined).toString();
}

/**
 * The packages of a Go binary: its main module, every dependency (a `=>` replacement replaces
 * the line before it when it names a version) and the standard library at the Go version it was built with.
 */
export function goPackages(binaryPath: string, info: { goVersion: string; modinfo: string }): FoundPackage[] {
  const out: FoundPackage[] = [];
  const add = (name: string, version: string) => {
    const known = version && version !== '(devel)' ? version : undefined;
    out.push({ ecosystem: 'golang', name, version: version || '(devel)', purl: goPurl(name, known), foundIn: binaryPath });
  };
  for (const line of info.modinfo.split('\n')) {
    const [kind, path, version = ''] = line.split('\t');
    if (!path) continue;
    if (kind === 'mod' || kind === 'dep') add(path, version);
    // A replacement by another module version names what is in the binary; one by a local
    // directory (version "(devel)") leaves the required module as the best name for it.
    else if (kind === '=>' && version && version !== '(devel)' && out.length) {
      out.pop();
      add(path, version);
    }
  }
  const go = /^go(\d+(?:\.\d+)*)/.exec(info.goVersion);
  if (go) out.push({ ecosystem: 'golang', name: 'stdlib', version: go[1]!, purl: goPurl('stdlib', go[1]), foundIn: binaryPath });
  return out;
}
