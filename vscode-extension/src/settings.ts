// Mapping of VS Code settings (`passpilot.*`) to the JSON object the server expects
// (docs/design.md, "Settings (the client/server contract)"). No `vscode` import: unit-testable.

export type ModelProfile = 'passpilot' | 'llm-compiler-ftd';

export const MODEL_PROFILES: readonly ModelProfile[] = ['passpilot', 'llm-compiler-ftd'];

export type CompilerBackend = 'auto' | 'opt' | 'libllvm';

export const COMPILER_BACKENDS: readonly CompilerBackend[] = ['auto', 'opt', 'libllvm'];

/** The nested object sent as `initializationOptions` and answered to `workspace/configuration`. */
export interface ServerSettings {
  opt: { path: string };
  model: { path: string; profile: ModelProfile; samples: number; gpuLayers: number; threads: number };
  budget: number;
  cache: { dir: string };
  compiler: { backend: CompilerBackend };
  deepSearch: { seconds: number };
}

/** Dotted keys (relative to the `passpilot` section) that belong to the server contract, with defaults. */
export const SERVER_SETTING_DEFAULTS = {
  'opt.path': '',
  'model.path': '',
  'model.profile': 'passpilot',
  'model.samples': 4,
  'model.gpuLayers': 0,
  'model.threads': 0,
  budget: 10,
  'cache.dir': '',
  'compiler.backend': 'auto',
  'deepSearch.seconds': 10,
} as const;

export type ServerSettingKey = keyof typeof SERVER_SETTING_DEFAULTS;

export const SERVER_SETTING_KEYS = Object.keys(SERVER_SETTING_DEFAULTS) as ServerSettingKey[];

/** Client-only settings: how the extension starts the server. Never sent to the server. */
export const CLIENT_SETTING_DEFAULTS = {
  'server.command': [] as string[],
  'server.pythonPath': '',
} as const;

export type ClientSettingKey = keyof typeof CLIENT_SETTING_DEFAULTS;

export const SECTION = 'passpilot';

/** Reads one setting (key relative to the `passpilot` section); `undefined` when unset. */
export type SettingGetter = (key: string) => unknown;

function str(v: unknown, dflt: string): string {
  return typeof v === 'string' ? v : dflt;
}

function int(v: unknown, dflt: number, min: number, max = Infinity): number {
  if (typeof v === 'string' && v.trim() !== '') v = Number(v);
  if (typeof v !== 'number' || !Number.isFinite(v)) return dflt;
  const n = Math.trunc(v);
  return n < min || n > max ? dflt : n;
}

/**
 * Builds the server's settings object from VS Code settings, replacing values of the wrong
 * type or out of range by their defaults so that the server always gets a valid object.
 */
export function toServerSettings(get: SettingGetter): ServerSettings {
  const d = SERVER_SETTING_DEFAULTS;
  const profile = get('model.profile');
  const backend = get('compiler.backend');
  return {
    opt: { path: str(get('opt.path'), d['opt.path']) },
    model: {
      path: str(get('model.path'), d['model.path']),
      profile: MODEL_PROFILES.includes(profile as ModelProfile) ? (profile as ModelProfile) : d['model.profile'],
      samples: int(get('model.samples'), d['model.samples'], 1),
      gpuLayers: int(get('model.gpuLayers'), d['model.gpuLayers'], -1),
      threads: int(get('model.threads'), d['model.threads'], 0),
    },
    budget: int(get('budget'), d.budget, 0),
    cache: { dir: str(get('cache.dir'), d['cache.dir']) },
    compiler: {
      backend: COMPILER_BACKENDS.includes(backend as CompilerBackend) ? (backend as CompilerBackend) : d['compiler.backend'],
    },
    deepSearch: { seconds: int(get('deepSearch.seconds'), d['deepSearch.seconds'], 1, 3600) },
  };
}

/**
 * Answers one `workspace/configuration` item: `section` is `passpilot` (whole object),
 * a sub-section such as `passpilot.model` or a leaf such as `passpilot.model.samples`.
 * Returns `undefined` for sections that are not PassPilot's, or unknown sub-keys.
 */
export function configurationFor(section: string | undefined, settings: ServerSettings): unknown {
  if (section === undefined) return undefined;
  if (section === SECTION) return settings;
  if (!section.startsWith(SECTION + '.')) return undefined;
  let node: unknown = settings;
  for (const part of section.slice(SECTION.length + 1).split('.')) {
    if (node === null || typeof node !== 'object' || !(part in (node as object))) return null;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** True when a settings change needs a new server process (the command line changed). */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects(`${SECTION}.server`);
}
