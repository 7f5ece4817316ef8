/**
 * `${NAME}` substitution in the string values of the build file.
 *
 * - `${NAME}` is replaced by the value of NAME; NAME must be a declared arg or a built-in
 *   (`variant`). Unknown names are problems, never silently empty.
 * - `$${` is an escape for a literal `${` (so `$${HOME}` gives `${HOME}`).
 * - A `$` not followed by `{` is kept as is.
 * - Substitution is one pass: a substituted value is not scanned again.
 *
 * Which names exist is decided by the caller (load.ts): the args, with the process
 * environment overriding only args that are declared. Arbitrary environment variables are
 * deliberately not visible, so the same file builds the same images on any machine.
 */

export interface SubstitutionProblem {
  message: string;
  hint: string;
}

export interface SubstitutionResult {
  value: string;
  problems: SubstitutionProblem[];
}

export interface SubstitutionScope {
  /** Names that can be used, with their values. */
  vars: ReadonlyMap<string, string>;
  /**
   * The environment: only used to explain why a variable that is set there cannot be used
   * (it is not declared in args).
   */
  env?: Readonly<Record<string, string | undefined>>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isVariableName(name: string): boolean {
  return NAME.test(name);
}

/** True when the string contains anything substitution would touch. */
export function needsSubstitution(input: string): boolean {
  return input.includes('${');
}

export function substitute(input: string, scope: SubstitutionScope): SubstitutionResult {
  if (!needsSubstitution(input)) return { value: input, problems: [] };
  const problems: SubstitutionProblem[] = [];
  let out = '';
  let i = 0;
  while (i < input.length) {
    const dollar = input.indexOf('$', i);
    if (dollar < 0) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, dollar);
    if (input.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
      continue;
    }
    if (!input.startsWith('${', dollar)) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const close = input.indexOf('}', dollar + 2);
    if (close < 0) {
      problems.push({
        message: `"\${" without a closing "}" in "${input}"`,
        hint: 'close it as ${NAME}, or write $${ for a literal ${',
      });
      out += input.slice(dollar);
      break;
    }
    const name = input.slice(dollar + 2, close);
    const whole = input.slice(dollar, close + 1);
    if (!NAME.test(name)) {
      problems.push({
        message: `"${whole}" is not a valid variable reference`,
        hint: 'names are letters, digits and _ (not starting with a digit); write $${ for a literal ${',
      });
      out += whole;
    } else {
      const value = scope.vars.get(name);
      if (value === undefined) {
        problems.push({ message: `unknown variable "${whole}"`, hint: unknownHint(name, scope) });
        out += whole;
      } else {
        out += value;
      }
    }
    i = close + 1;
  }
  return { value: out, problems };
}

function unknownHint(name: string, scope: SubstitutionScope): string {
  const known = [...scope.vars.keys()].sort();
  const knownText = known.length ? `known: ${known.join(', ')}` : 'no args are declared';
  if (scope.env?.[name] !== undefined) {
    return `${name} is set in the environment, but only names declared under \`args:\` are substituted; add "${name}: <default>" to args (${knownText})`;
  }
  return `declare it under \`args:\` (${knownText}), or write $\${${name}} for a literal \${${name}}`;
}
