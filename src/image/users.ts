/** An image's users and groups: /etc/passwd and /etc/group, and owners (`copy --chown`-style) resolved against them. */

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID_RE = /^\d+$/;
const MAX_ID = 0xffffffff;

function parseId(s: string | undefined): number | undefined {
  if (s === undefined || !ID_RE.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

/** Parses passwd(5) lines; comments, NIS (+/-) and malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (!f[0] || uid === undefined || gid === undefined) continue;
    out.push({ name: f[0], uid, gid, gecos: f[4] ?? '', home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** Parses group(5) lines; comments, NIS (+/-) and malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    const gid = parseId(f[2]);
    if (!f[0] || gid === undefined) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

/**
 * Resolves a `--chown`-style owner the way BuildKit does: `1000` → 1000:1000; `name` → uid and
 * primary gid from /etc/passwd; `user:group` with either side a name or a number. Names are looked
 * up in the base image's /etc/passwd and /etc/group texts (undefined when the base has none).
 */
export function resolveOwner(owner: string, passwd?: string, group?: string): { uid: number; gid: number } {
  const spec = owner.trim();
  const parts = spec.split(':');
  const userPart = parts[0] ?? '';
  const groupPart = parts[1];
  if (parts.length > 2 || !userPart || groupPart === '') {
    throw new Error(`invalid owner "${owner}": use user, user:group, uid or uid:gid`);
  }
  const tooLarge = (s: string) => ID_RE.test(s) && parseId(s) === undefined;
  if (tooLarge(userPart) || (groupPart !== undefined && tooLarge(groupPart))) {
    throw new Error(`invalid owner "${owner}": ids must be at most ${MAX_ID}`);
  }

  let uid: number;
  let primaryGid: number;
  const numericUid = parseId(userPart);
  if (numericUid !== undefined) {
    uid = numericUid;
    primaryGid = numericUid;
  } else {
    const user = passwd === undefined ? undefined : parsePasswd(passwd).find((u) => u.name === userPart);
    if (!user) {
      const why = passwd === undefined ? ' (the base image has no /etc/passwd)' : '';
      throw new Error(
        `owner "${owner}": user "${userPart}" is not in the base image's /etc/passwd${why}; use numeric ids instead (e.g. 1000:1000)`,
      );
    }
    uid = user.uid;
    primaryGid = user.gid;
  }

  if (groupPart === undefined) return { uid, gid: primaryGid };
  const numericGid = parseId(groupPart);
  if (numericGid !== undefined) return { uid, gid: numericGid };
  const g = group === undefined ? undefined : parseGroup(group).find((x) => x.name === groupPart);
  if (!g) {
    const why = group === undefined ? ' (the base image has no /etc/group)' : '';
    throw new Error(
      `owner "${owner}": group "${groupPart}" is not in the base image's /etc/group${why}; use numeric ids instead (e.g. 1000:1000)`,
    );
  }
  return { uid, gid: g.gid };
}
