// Text-level helpers over LLVM IR used by the e2e test to check the server's figures
// independently of the server: find functions, count instructions, run opt / llvm-extract.
import { execFileSync } from 'node:child_process';

const NAME = String.raw`(?:"(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)`;
const DEFINE_RE = new RegExp(String.raw`^define\b[^@]*@(${NAME})\s*\(`);
const LABEL_RE = new RegExp(String.raw`^(?:${NAME}):(?:\s|;|$)`);

function unquote(name) {
  return name.startsWith('"') ? name.slice(1, -1) : name;
}

/** Net `[`/`(` nesting of a line, ignoring strings and comments. */
function nesting(line) {
  let depth = 0;
  let inString = false;
  for (const ch of line) {
    if (inString) {
      if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === ';') break;
    else if (ch === '[' || ch === '(') depth++;
    else if (ch === ']' || ch === ')') depth--;
  }
  return depth;
}

/**
 * Defined functions of a module: [{name, line (0-based index of the define line), end, count}].
 * `count` is the number of instructions: the body's non-blank lines that are not labels,
 * comments or debug records, an instruction spanning several lines (switch) counting once.
 */
export function functions(text) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = DEFINE_RE.exec(lines[i]);
    if (!m) continue;
    // The body starts at the `{` ending the define line (attributes may follow on the same line).
    let j = i;
    let count = 0;
    let open = 0;
    for (j = i + 1; j < lines.length; j++) {
      const t = lines[j].trim();
      if (open > 0) {
        open += nesting(t);
        continue;
      }
      if (t === '}') break;
      if (!t || t.startsWith(';') || t.startsWith('#dbg_') || LABEL_RE.test(t)) continue;
      count++;
      open = Math.max(0, nesting(t));
    }
    out.push({ name: unquote(m[1]), line: i, end: j, count });
    i = j;
  }
  return out;
}

export function countFunction(text, name) {
  const f = functions(text).find((x) => x.name === name);
  if (!f) throw new Error(`function @${name} not found`);
  return f.count;
}

export function countDefined(text) {
  return functions(text).reduce((n, f) => n + f.count, 0);
}

/** Instructions of @name after `opt -passes=default<Oz>` on its standalone module (llvm-extract). */
export function ozCount(file, name, { opt = 'opt-22', extract = 'llvm-extract-22' } = {}) {
  const standalone = execFileSync(extract, [`--func=${name}`, '-S', file, '-o', '-'], { encoding: 'utf8' });
  const optimized = execFileSync(opt, ['-passes=default<Oz>', '-S', '-', '-o', '-'], {
    input: standalone,
    encoding: 'utf8',
  });
  return { standalone: countDefined(standalone), oz: countDefined(optimized), optimized };
}

/** Throws (with opt's message) when the module does not verify. */
export function verify(file, { opt = 'opt-22' } = {}) {
  execFileSync(opt, ['-passes=verify', '-disable-output', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * The module with `copies` renamed copies of its defined functions appended (`@f` → `@f.copy1`, …; calls
 * between them renamed alike, so each copy is a distinct function): a module with many functions to measure.
 */
export function withCopies(text, copies) {
  const lines = text.split('\n');
  const defined = functions(text);
  const names = defined.map((f) => f.name).filter((n) => /^[-a-zA-Z$._0-9]+$/.test(n));
  const rename = new RegExp(String.raw`@(${names.map((n) => n.replace(/[.$]/g, '\\$&')).join('|')})(?=[\s(,)])`, 'g');
  const out = [...lines];
  for (let k = 1; k <= copies; k++) {
    for (const f of defined) {
      if (!names.includes(f.name)) continue;
      out.push('', ...lines.slice(f.line, f.end + 1).map((l) => l.replace(rename, (_, n) => `@${n}.copy${k}`)));
    }
  }
  return out.join('\n');
}
