/**
 * Front ends turn a file into the model (model.ts); everything after them (variant selection,
 * dependency order, platforms, tags, the build) works on the model only. A new input format
 * (a Dockerfile, say) is a folder of its own that produces a BuildFile, plus one entry in
 * FRONT_ENDS. A build file's `dockerfile:` variants are the exception that needs the network (their
 * bases' configs): the YAML front end keeps them as DockerfileSource, and the plan converts them
 * with src/dockerfile/variants.ts into a new model.
 */
import { graphProblems } from './graph.js';
import { loadBuildFile, type LoadOptions } from './load.js';
import { ConfigError, type BuildFile } from './model.js';

export interface FrontEnd {
  /** For messages: "YAML build file". */
  readonly name: string;
  /** Whether this front end reads `file` (by its name; the first that does is used). */
  accepts(file: string): boolean;
  /** The model, or a ConfigError listing every problem of the file. */
  load(file: string, opts: LoadOptions): Promise<BuildFile>;
  /** True when load() already reports unknown variants and cycles at their exact place. */
  readonly checksGraph?: boolean;
}

const yamlFrontEnd: FrontEnd = {
  name: 'YAML build file',
  accepts: () => true,
  load: (file, opts) => loadBuildFile(file, opts),
  checksGraph: true,
};

/** In order of preference; the YAML build file takes whatever no other front end claims. */
const FRONT_ENDS: readonly FrontEnd[] = [yamlFrontEnd];

/** Loads a build file with the front end for it, and checks the variant graph it describes. */
export async function loadModel(file: string, opts: LoadOptions = {}): Promise<BuildFile> {
  const frontEnd = FRONT_ENDS.find((f) => f.accepts(file)) ?? yamlFrontEnd;
  const model = await frontEnd.load(file, opts);
  if (!frontEnd.checksGraph) {
    const problems = graphProblems(model);
    if (problems.length) throw new ConfigError(problems);
  }
  return model;
}
