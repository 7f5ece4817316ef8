/**
 * The tag grammar: tag rules and flavor compatible with docker/metadata-action (v5/v6). The same
 * `tags` and `flavor` lines give the same tag names, in the same order, applied once per variant.
 * Pure: no GitHub event reading here (github/context.ts does that), so config/ can check lines too.
 *
 * Differences, all on inputs metadata-action would turn into an unusable tag or silently ignore:
 * - a tag is also cut to 128 characters and loses leading `.`/`-` (a registry rejects both);
 * - unknown types, attributes and `{{expressions}}`, and a semver `match=` without a capture
 *   group, are errors naming the line, not '' or ignored;
 * - `type=pep440` is not supported (use `type=semver` or `type=match`);
 * - the final list has no duplicates (e.g. `type=raw,value=latest` plus an automatic `latest`);
 * - a rule whose value is empty adds no tag even with a prefix/suffix (`{{branch}}` on a tag push
 *   with a `-claude` suffix gives nothing, not `-claude`);
 * - expressions in a flavor prefix/suffix are also rendered for the `latest` tag;
 * - expression output is not HTML-escaped (Handlebars would turn `=` in a branch into `&#x3D;`);
 * - `{{commit_date}}` uses the commit date the push payload carries, else the current date;
 * - an unquoted date format (`{{date YYYYMMDD}}`) renders the ISO date, as metadata-action does,
 *   and also warns to quote it.
 * Its own test tables are replayed in __tests__/tags-metadata-action.test.ts.
 */
export { branchOf, tagOf, type TagContext } from './context.js';
export { TagRuleError, splitFields } from './lines.js';
export {
  DEFAULT_PRIORITIES,
  DEFAULT_TAG_LINES,
  parseTagRules,
  resolveTagRules,
  type RefEvent,
  type TagRule,
  type TagRuleType,
} from './rules.js';
export { DEFAULT_FLAVOR, mergeFlavor, parseFlavor, parseFlavorOverrides, type Flavor } from './flavor.js';
export { parseSemver, type SemVer } from './semver.js';
export { computeTags, computeVersion, sanitizeTag, type ComputeOptions, type ComputedVersion } from './compute.js';
export { formatDate } from './date-format.js';
