// The pass explorer's data (`passpilot/passTrace`, `passpilot/minimizePassList`, docs/design.md), the
// code lenses' commands, and cancellation. No `vscode` import: unit-testable.

export const TRACE_SCHEME = 'passpilot-trace';
export const PASS_TRACE_REQUEST = 'passpilot/passTrace';
export const MINIMIZE_REQUEST = 'passpilot/minimizePassList';
/** LSP's RequestCancelled: the answer to a request the client cancelled. */
export const REQUEST_CANCELLED = -32800;

export interface TraceStep {
  /** LLVM's name of the pass, e.g. `InstCombinePass`. */
  name: string;
  /** What it ran on: a function, `(f)`, `loop … in function f`, `[module]`. */
  target: string;
  count: number;
  diff: string;
  ir: string;
}

export interface PassTrace {
  function: string;
  passes: string;
  source: string;
  best?: number;
  oz?: number;
  original: number;
  original_ir: string;
  final: number;
  folded: number;
  steps: TraceStep[];
}

export interface MinimizeResult {
  function: string;
  passes: string;
  minimized: string;
  count: number;
  removed: string[];
  measured: number;
}

/** A function of a document, as the server's code lenses name it. */
export interface FunctionRef {
  uri: string;
  function: string;
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const str = (v: unknown): v is string => typeof v === 'string';

export function isFunctionRef(v: unknown): v is FunctionRef {
  return !!v && typeof v === 'object' && str((v as FunctionRef).uri) && str((v as FunctionRef).function);
}

/** The server's answer as a trace, or undefined when it is not one (a sloppy payload cannot break the view). */
export function normalizeTrace(raw: unknown): PassTrace | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  if (!str(r.function) || !str(r.passes) || !num(r.original) || !num(r.final) || !Array.isArray(r.steps)) return undefined;
  const steps: TraceStep[] = [];
  for (const s of r.steps as unknown[]) {
    const step = (s ?? {}) as Record<string, unknown>;
    if (!str(step.name) || !num(step.count) || !str(step.ir)) return undefined;
    steps.push({
      name: step.name,
      target: str(step.target) ? step.target : '',
      count: step.count,
      diff: str(step.diff) ? step.diff : '',
      ir: step.ir,
    });
  }
  return {
    function: r.function,
    passes: r.passes,
    source: str(r.source) ? r.source : '',
    best: num(r.best) ? r.best : undefined,
    oz: num(r.oz) ? r.oz : undefined,
    original: r.original,
    original_ir: str(r.original_ir) ? r.original_ir : '',
    final: r.final,
    folded: num(r.folded) ? r.folded : 0,
    steps,
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `@grade: 18 → 8 instrs in 2 steps (3 passes folded)`, for the view's message. */
export function traceSummary(t: PassTrace): string {
  return (
    `@${t.function}: ${t.original} → ${t.final} instrs in ${plural(t.steps.length, 'step')}` +
    ` (${plural(t.folded, 'pass', 'passes')} that changed nothing folded)`
  );
}

/** The count before step `index` (0-based). */
export function countBefore(t: PassTrace, index: number): number {
  return index === 0 ? t.original : t.steps[index - 1].count;
}

export function signedDelta(before: number, after: number): string {
  const d = after - before;
  return d === 0 ? '±0' : d < 0 ? `−${-d}` : `+${d}`;
}

export function stepLabel(t: PassTrace, index: number): string {
  return `${index + 1}. ${t.steps[index].name}`;
}

/** `18 → 12 (−6)` */
export function stepDescription(t: PassTrace, index: number): string {
  const before = countBefore(t, index);
  const after = t.steps[index].count;
  return `${before} → ${after} (${signedDelta(before, after)})`;
}

export function stepTooltip(t: PassTrace, index: number): string {
  const s = t.steps[index];
  return `${s.name} on ${s.target || `@${t.function}`}: ${stepDescription(t, index)} instructions. Click for the diff.`;
}

/** Title of a step's diff editor. */
export function stepDiffTitle(t: PassTrace, index: number): string {
  return `@${t.function} ${index + 1}/${t.steps.length} ${t.steps[index].name}: ${stepDescription(t, index)}`;
}

/** Paths (under TRACE_SCHEME) of the module before and after step `index`; `.ll` gives them the LLVM language. */
export function stepPaths(fn: string, serial: number, index: number): { before: string; after: string } {
  const safe = fn.replace(/[^-\w.$]/g, '_') || 'function';
  return { before: `/${serial}/${safe}/${index}.ll`, after: `/${serial}/${safe}/${index + 1}.ll` };
}

/** The module text after `count` steps (0: as written). */
export function irAfter(t: PassTrace, count: number): string {
  return count === 0 ? t.original_ir : t.steps[count - 1].ir;
}

/** The top-level elements of a pass list (`a,function(b,c),d<x;y>` has three). */
export function splitPassList(passes: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < passes.length; i++) {
    const c = passes[i];
    if (c === '(' || c === '<') depth++;
    else if (c === ')' || c === '>') depth--;
    else if (c === ',' && depth === 0) {
      out.push(passes.slice(start, i));
      start = i + 1;
    }
  }
  out.push(passes.slice(start));
  return out.filter((e) => e.length > 0);
}

export function describeMinimized(r: unknown): { ok: boolean; text: string; passes?: string } {
  const m = (r && typeof r === 'object' ? r : {}) as Partial<MinimizeResult>;
  if (!str(m.minimized) || !num(m.count)) return { ok: false, text: 'PassPilot: the server returned no result.' };
  const fn = m.function ? `@${m.function}` : 'the function';
  const removed = Array.isArray(m.removed) ? m.removed.length : 0;
  if (removed === 0) {
    return { ok: true, text: `PassPilot: no pass of ${fn}'s list can go (${m.count} instructions): ${m.minimized}`, passes: m.minimized };
  }
  const after = splitPassList(m.minimized).length;
  return {
    ok: true,
    text: `PassPilot: ${fn} needs ${after} of ${plural(after + removed, 'pass', 'passes')} for the same ${m.count} instructions: ${m.minimized}`,
    passes: m.minimized,
  };
}

/** Server commands of the code lenses and code actions, and the client commands that run them with progress and views. */
export const LENS_COMMANDS: Readonly<Record<string, string>> = {
  'passpilot.optimizeFunction': 'passpilot.client.optimizeFunctionAtCursor',
  'passpilot.deepOptimizeFunction': 'passpilot.client.deepOptimizeFunction',
  'passpilot.previewFunction': 'passpilot.client.showOptimizedDiff',
  'passpilot.showPassTrace': 'passpilot.client.explainPasses',
};

export function clientCommandFor(serverCommand: string | undefined): string | undefined {
  return serverCommand ? LENS_COMMANDS[serverCommand] : undefined;
}

/** Whether a failed request was the answer to a cancellation. */
export function isCancellation(e: unknown, cancelled: boolean): boolean {
  if (cancelled) return true;
  return !!e && typeof e === 'object' && (e as { code?: unknown }).code === REQUEST_CANCELLED;
}
