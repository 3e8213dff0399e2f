/**
 * A small Dockerfile reader: enough to check the image's build (stages, bases, COPY sources,
 * the final user and entrypoint) without a Docker engine, and to assemble the final stage's file
 * tree from this checkout. Handles comments, line continuations and `${ARG}` in FROM.
 */
import { cpSync, existsSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  /** The base image with global ARGs substituted, or an earlier stage's name. */
  base: string;
  instructions: Instruction[];
  /** The last WORKDIR of the stage ('/' without one). */
  workdir: string;
}

export interface Copy {
  from: string | null;
  sources: string[];
  dest: string;
}

/** Parses `text` into stages. */
export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) return;
    if (pending !== '' && line.trim().startsWith('#')) return; // comment inside a continuation
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    if (m)
      instructions.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start });
  });
  const globals: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      const base = (m[1] as string).replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => globals[a ?? b] ?? '');
      stages.push({ name: m[2] ?? String(stages.length), base, instructions: [], workdir: '/' });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (ins.op === 'ARG') {
        const [name, value = ''] = ins.args.split('=');
        globals[(name as string).trim()] = value.trim();
      }
      continue;
    }
    stage.instructions.push(ins);
    if (ins.op === 'WORKDIR') stage.workdir = path.posix.resolve(stage.workdir, ins.args);
  }
  return stages;
}

/** The COPY instructions of a stage. */
export function copiesOf(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      let from: string | null = null;
      while (words[0]?.startsWith('--')) {
        const flag = words.shift() as string;
        if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
      }
      const dest = words.pop() ?? '';
      return { from, sources: words, dest };
    });
}

/** The WORKDIR in effect at each instruction of `stage` (COPY destinations are relative to it). */
function workdirAt(stage: Stage, index: number): string {
  let wd = '/';
  for (const ins of stage.instructions.slice(0, index))
    if (ins.op === 'WORKDIR') wd = path.posix.resolve(wd, ins.args);
  return wd;
}

/**
 * Builds the final stage's files under `root` (which stands for `/`) from this checkout: COPY
 * from the build context copies from `repo`; COPY --from=<stage> takes the path relative to that
 * stage's WORKDIR from `repo` too (the build stage's WORKDIR is a copy of the checkout, and
 * `npm run build` has already produced dist/ here); node_modules is linked, not copied. RUN steps
 * are not replayed. Returns the final stage's WORKDIR under `root`.
 */
export function assembleFinalStage(stages: Stage[], repo: string, root: string): string {
  const final = stages[stages.length - 1] as Stage;
  final.instructions.forEach((ins, index) => {
    if (ins.op !== 'COPY') return;
    const copy = copiesOf({ ...final, instructions: [ins] })[0] as Copy;
    const wd = workdirAt(final, index);
    const source = copy.from ? stages.find((s) => s.name === copy.from) : undefined;
    if (copy.from && !source) throw new Error(`line ${ins.line}: unknown stage ${copy.from}`);
    for (const src of copy.sources) {
      const rel = source ? path.posix.relative(source.workdir, path.posix.resolve(source.workdir, src)) : src;
      if (rel.startsWith('..'))
        throw new Error(`line ${ins.line}: ${src} is outside stage ${copy.from}'s WORKDIR`);
      const from = path.join(repo, rel);
      if (!existsSync(from)) throw new Error(`line ${ins.line}: ${rel} does not exist in the checkout`);
      // Docker copies a directory's contents (not the directory) to dest; a file into dest/ keeps
      // its name.
      let to = path.join(root, path.posix.resolve(wd, copy.dest));
      const intoDir = copy.dest.endsWith('/') || copy.dest === '.';
      if (intoDir && !statSync(from).isDirectory()) to = path.join(to, path.basename(rel));
      mkdirSync(path.dirname(to), { recursive: true });
      if (path.basename(rel) === 'node_modules') symlinkSync(from, to, 'dir');
      else cpSync(from, to, { recursive: true });
    }
  });
  return path.join(root, final.workdir);
}
