// Messages about the server commands' results, and the URIs of the diff view.
// No `vscode` import: unit-testable.

export const PREVIEW_SCHEME = 'passpilot-preview';

/** Result of `passpilot.optimizeFunction` (docs/design.md). */
export interface OptimizeResult {
  applied: boolean;
  function: string;
  original: number;
  oz: number;
  best: number;
  passes: string | string[];
  source: string;
}

/** Result of `passpilot.previewFunction`. */
export interface PreviewResult {
  function: string;
  original_text: string;
  optimized_text: string;
  passes: string | string[];
  source: string;
  original: number;
  oz: number;
  best: number;
}

export function passesText(passes: unknown): string {
  if (Array.isArray(passes)) return passes.join(',');
  return typeof passes === 'string' ? passes : '';
}

/** When the server refused a change it has already shown the user why (`reason`): say nothing more. */
function refusedByServer(r: object): boolean {
  return typeof (r as { reason?: unknown }).reason === 'string';
}

function pct(from: number, to: number): string {
  if (!(from > 0)) return '';
  const p = ((to - from) / from) * 100;
  return ` (${p <= 0 ? '−' : '+'}${Math.abs(p).toFixed(1)}%)`;
}

export function describeOptimize(r: Partial<OptimizeResult> | null | undefined): { ok: boolean; text: string } {
  if (!r || typeof r !== 'object') return { ok: false, text: 'PassPilot: the server returned no result.' };
  const fn = r.function ? `@${r.function}` : 'the function';
  if (!r.applied) return { ok: false, text: refusedByServer(r) ? '' : `PassPilot: ${fn} was not changed.` };
  // Like the inlay hints: the change is measured against -Oz.
  const counts =
    typeof r.original === 'number' && typeof r.best === 'number'
      ? `: ${r.original} → ${r.best} instructions` +
        (typeof r.oz === 'number' ? ` (-Oz ${r.oz}${pct(r.oz, r.best).replace(/^ \(/, ', ').replace(/\)$/, '')})` : '')
      : '';
  const via = r.source ? ` [${r.source}]` : '';
  return { ok: true, text: `PassPilot: optimized ${fn}${counts}${via}.` };
}

/** Result of `passpilot.deepOptimizeFunction`: an optimize result with the search's figures. */
export interface DeepSearchResult extends OptimizeResult {
  search: { tried: number; seconds: number; stopped: string; winner_source: string | null };
}

/** "PassPilot: optimized @f: 29 → 12 instructions (-Oz 14, −14.3%) [search] · deep search: 2,345 candidates in 10.0 s." */
export function describeDeepSearch(r: Partial<DeepSearchResult> | null | undefined): { ok: boolean; text: string } {
  const base = describeOptimize(r);
  const s = r && typeof r === 'object' ? r.search : undefined;
  if (!base.ok || !s || typeof s.tried !== 'number' || typeof s.seconds !== 'number') return base;
  return { ok: true, text: `${base.text.replace(/\.$/, '')} · deep search: ${s.tried.toLocaleString('en-US')} candidates in ${s.seconds.toFixed(1)} s.` };
}

/** "PassPilot: optimized 12 of 15 functions: 1,234 → 567 instructions (-Oz 600, −5.5%); 3 left as written."
 * Totals over the functions that were rewritten: their count as written, after -Oz, and as written now. */
export function describeModule(r: unknown): { ok: boolean; text: string } {
  if (!r || typeof r !== 'object') return { ok: false, text: 'PassPilot: the server returned no result.' };
  const { applied, functions } = r as { applied?: boolean; functions?: unknown[] };
  const rows = (Array.isArray(functions) ? functions : []).filter((f): f is Record<string, unknown> => !!f && typeof f === 'object');
  if (!applied) return { ok: false, text: refusedByServer(r) ? '' : `PassPilot: the module was not changed.` };
  const written = rows.filter((f) => f.applied !== false);
  const n = rows.length;
  const counted = written.filter((f) => typeof f.original === 'number' && typeof f.oz === 'number' && typeof f.best === 'number');
  const sum = (key: string) => counted.reduce((total, f) => total + (f[key] as number), 0);
  const num = (x: number) => x.toLocaleString('en-US');
  const totals = counted.length
    ? `: ${num(sum('original'))} → ${num(sum('best'))} instructions (-Oz ${num(sum('oz'))}${pct(sum('oz'), sum('best')).replace(/^ \(/, ', ').replace(/\)$/, '')})`
    : '';
  const left = n - written.length;
  const rest = left > 0 ? `; ${left} left as written` : '';
  return { ok: true, text: `PassPilot: optimized ${written.length} of ${n} function${n === 1 ? '' : 's'}${totals}${rest}.` };
}

export function describeInsert(r: unknown): { ok: boolean; text: string } {
  if (!r || typeof r !== 'object') return { ok: false, text: 'PassPilot: the server returned no result.' };
  const { applied, passes } = r as { applied?: boolean; passes?: unknown };
  if (!applied) return { ok: false, text: refusedByServer(r) ? '' : 'PassPilot: no pass list was inserted.' };
  return { ok: true, text: `PassPilot: inserted -passes='${passesText(passes)}'.` };
}

/** Title of the diff editor. */
export function diffTitle(r: Partial<PreviewResult>): string {
  const fn = r.function ? `@${r.function}` : 'function';
  const counts =
    typeof r.original === 'number' && typeof r.best === 'number' ? ` (${r.original} → ${r.best} instrs)` : '';
  return `${fn}: as written ↔ optimized${counts}`;
}

/** Paths (under PREVIEW_SCHEME) of the two sides of one preview; `.ll` so they get the LLVM language. */
export function previewPaths(fn: string, serial: number): { left: string; right: string } {
  const safe = fn.replace(/[^-\w.$]/g, '_') || 'function';
  return { left: `/${serial}/written/${safe}.ll`, right: `/${serial}/optimized/${safe}.ll` };
}
