// Rendering of the `passpilot/status` notification (docs/design.md) for the status bar.
// No `vscode` import: unit-testable.

export interface ServerStatus {
  opt: { path: string; version: string } | null;
  model: { path: string; profile: string } | null;
  /** The compiler that measures: `opt` processes or `libllvm` in worker processes. */
  backend: string | null;
  busy: boolean;
  message: string | null;
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** `warning` when `opt` is missing (nothing can be measured). */
  severity: 'ok' | 'warning' | 'error';
}

function baseName(p: string): string {
  const parts = p.split(/[\\/]/);
  return parts[parts.length - 1] || p;
}

/** `model <name>`: the GGUF file name without directory and extension, or the bundled default. */
export function modelLabel(model: ServerStatus['model']): string {
  if (!model) return 'no model';
  if (!model.path) return `model ${model.profile || 'default'} (bundled)`;
  return `model ${baseName(model.path).replace(/\.gguf$/i, '')}`;
}

/** How figures are measured: `libLLVM 22.1.8` (in-process library) or `opt 22.1.8` (processes). */
export function compilerLabel(s: Pick<ServerStatus, 'opt' | 'backend'>): string {
  const opt = optLabel(s.opt);
  if (s.opt && s.backend === 'libllvm') return opt.replace(/^opt\b/, 'libLLVM');
  return opt;
}

/** `opt 22.1.0` (version) or the executable's name when the version is unknown. */
export function optLabel(opt: ServerStatus['opt']): string {
  if (!opt) return 'opt not found';
  const v = (opt.version || '').trim();
  const m = /(\d+(?:\.\d+)*)/.exec(v);
  return m ? `opt ${m[1]}` : baseName(opt.path || 'opt');
}

/** Accepts anything and returns a well-formed status, so a sloppy payload cannot break the UI. */
export function normalizeStatus(raw: unknown): ServerStatus {
  const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const o = r.opt as Record<string, unknown> | null | undefined;
  const m = r.model as Record<string, unknown> | null | undefined;
  return {
    opt: o && typeof o === 'object' ? { path: String(o.path ?? ''), version: String(o.version ?? '') } : null,
    model: m && typeof m === 'object' ? { path: String(m.path ?? ''), profile: String(m.profile ?? '') } : null,
    backend: typeof r.backend === 'string' && r.backend ? r.backend : null,
    busy: r.busy === true,
    message: typeof r.message === 'string' && r.message ? r.message : null,
  };
}

export function formatStatus(s: ServerStatus): StatusView {
  const model = modelLabel(s.model);
  const opt = compilerLabel(s);
  const tooltip = [
    'PassPilot language server',
    `Model: ${s.model ? `${s.model.path || '(bundled default)'} [${s.model.profile}]` : 'none'}`,
    `opt: ${s.opt ? `${s.opt.path}${s.opt.version ? ` (${s.opt.version})` : ''}` : 'not found (set passpilot.opt.path)'}`,
    ...(s.backend ? [`Measured with: ${s.backend === 'libllvm' ? 'libLLVM in worker processes' : 'opt processes'}`] : []),
    ...(s.message ? [s.message] : []),
    'Click to show the server log.',
  ].join('\n');
  if (s.busy) {
    // The running job's title is already shown by its progress item: the status bar only spins (its
    // tooltip names the job), so that two items never both say "optimizing @f".
    return { text: `$(sync~spin) PassPilot: ${model} · ${opt}`, tooltip, severity: 'ok' };
  }
  if (!s.opt) {
    return { text: `$(warning) PassPilot: ${model} · ${opt}`, tooltip, severity: 'warning' };
  }
  return { text: `$(zap) PassPilot: ${model} · ${opt}`, tooltip, severity: 'ok' };
}
