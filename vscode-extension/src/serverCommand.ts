// How the language server is started, and whether the interpreter can import it.
// No `vscode` import: unit-testable.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const SERVER_MODULE = 'lsp_server';

export type CommandSource = 'server.command' | 'server.pythonPath' | 'python-extension' | 'default';

export interface ServerCommandInputs {
  /** `passpilot.server.command` */
  command?: readonly string[] | null;
  /** `passpilot.server.pythonPath` */
  pythonPath?: string | null;
  /** The Python extension's active interpreter as a command line (may be more than one word). */
  pythonExtension?: readonly string[] | null;
  /** Used to expand `${workspaceFolder}` in settings. */
  workspaceFolder?: string;
  /** Used to expand a leading `~`. */
  home?: string;
}

export interface ResolvedServerCommand {
  command: string;
  args: string[];
  /**
   * The interpreter command line (program and its leading options) when the server is started
   * as `<python> -m lsp_server`; this is what must be able to `import lsp_server`.
   * Undefined for other custom commands (e.g. `passpilot serve`).
   */
  interpreter?: string[];
  source: CommandSource;
}

export const DEFAULT_PYTHON = 'python3';

/** Expands `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~/`. */
export function expandVariables(value: string, ctx: { workspaceFolder?: string; home?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const home = ctx.home ?? os.homedir();
  const env = ctx.env ?? process.env;
  let v = value.replace(/\$\{(workspaceFolder|userHome|env:([A-Za-z_][A-Za-z0-9_]*))\}/g, (m, name: string, envName?: string) => {
    if (name === 'workspaceFolder') return ctx.workspaceFolder ?? m;
    if (name === 'userHome') return home;
    return env[envName!] ?? '';
  });
  if (v === '~') v = home;
  else if (v.startsWith('~/')) v = path.join(home, v.slice(2));
  return v;
}

function cleanList(list: readonly unknown[] | null | undefined): string[] {
  if (!Array.isArray(list)) return [];
  return list.filter((s): s is string => typeof s === 'string').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Index of `-m lsp_server` in a command line, or -1. */
function moduleIndex(argv: readonly string[]): number {
  for (let i = 1; i + 1 < argv.length; i++) {
    if (argv[i] === '-m' && argv[i + 1] === SERVER_MODULE) return i;
    if (argv[i] === `-m${SERVER_MODULE}`) return i;
  }
  return -1;
}

/**
 * Decides the server command line:
 * 1. `passpilot.server.command` when non-empty, as given;
 * 2. else `<passpilot.server.pythonPath> -m lsp_server`;
 * 3. else `<Python extension's interpreter> -m lsp_server`;
 * 4. else `python3 -m lsp_server`.
 */
export function resolveServerCommand(inputs: ServerCommandInputs): ResolvedServerCommand {
  const ctx = { workspaceFolder: inputs.workspaceFolder, home: inputs.home };
  const custom = cleanList(inputs.command).map((s) => expandVariables(s, ctx));
  if (custom.length > 0) {
    const i = moduleIndex(custom);
    return {
      command: custom[0],
      args: custom.slice(1),
      interpreter: i > 0 ? custom.slice(0, i) : undefined,
      source: 'server.command',
    };
  }
  let interpreter: string[];
  let source: CommandSource;
  const pythonPath = typeof inputs.pythonPath === 'string' ? inputs.pythonPath.trim() : '';
  const fromExtension = cleanList(inputs.pythonExtension);
  if (pythonPath) {
    interpreter = [expandVariables(pythonPath, ctx)];
    source = 'server.pythonPath';
  } else if (fromExtension.length > 0) {
    interpreter = fromExtension;
    source = 'python-extension';
  } else {
    interpreter = [DEFAULT_PYTHON];
    source = 'default';
  }
  return { command: interpreter[0], args: [...interpreter.slice(1), '-m', SERVER_MODULE], interpreter, source };
}

/** Shell-like rendering of a command line for messages and logs. */
export function formatCommandLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[-\w./:=@+,]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Reads the Python extension's API object (`ms-python.python` exports) without depending on
 * its types: the environments API (`environments.getActiveEnvironmentPath` /
 * `resolveEnvironment`) first, then the older `settings.getExecutionDetails().execCommand`.
 */
export async function interpreterFromPythonApi(api: unknown, resource?: unknown): Promise<string[] | undefined> {
  if (!api || typeof api !== 'object') return undefined;
  const a = api as {
    environments?: {
      getActiveEnvironmentPath?: (r?: unknown) => { path?: string } | undefined;
      resolveEnvironment?: (p: unknown) => Promise<{ executable?: { uri?: { fsPath?: string } } } | undefined>;
    };
    settings?: { getExecutionDetails?: (r?: unknown) => { execCommand?: string[] } | undefined };
  };
  const envs = a.environments;
  if (envs && typeof envs.getActiveEnvironmentPath === 'function') {
    const active = envs.getActiveEnvironmentPath(resource);
    if (active) {
      let exe: string | undefined;
      if (typeof envs.resolveEnvironment === 'function') {
        try {
          exe = (await envs.resolveEnvironment(active))?.executable?.uri?.fsPath;
        } catch {
          exe = undefined;
        }
      }
      exe = exe || active.path;
      if (exe) return [exe];
    }
  }
  const details = a.settings?.getExecutionDetails?.(resource);
  const exec = cleanList(details?.execCommand);
  return exec.length > 0 ? exec : undefined;
}

export interface ImportCheck {
  ok: boolean;
  /** What went wrong: the interpreter's stderr, or why it could not be run. */
  detail: string;
}

/** Runs `<interpreter> -c "import lsp_server"` (same cwd and environment as the server will get). */
export function checkImportable(
  interpreter: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ImportCheck> {
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const done = (r: ImportCheck) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(r);
      }
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(interpreter[0], [...interpreter.slice(1), '-c', `import ${SERVER_MODULE}`], {
        cwd: options.cwd && fs.existsSync(options.cwd) ? options.cwd : undefined,
        env: options.env ?? process.env,
        stdio: ['ignore', 'ignore', 'pipe'],
        windowsHide: true,
      });
    } catch (e) {
      resolve({ ok: false, detail: `cannot run ${interpreter[0]}: ${(e as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      child.kill();
      done({ ok: false, detail: `${formatCommandLine(interpreter)} did not answer within ${options.timeoutMs ?? 30000} ms` });
    }, options.timeoutMs ?? 30000);
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'not found' : e.message;
      done({ ok: false, detail: `cannot run ${interpreter[0]}: ${why}` });
    });
    child.on('close', (code) => {
      if (code === 0) done({ ok: true, detail: '' });
      else done({ ok: false, detail: lastLine(stderr) || `exit status ${code}` });
    });
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? '';
}

/**
 * Looks upward from each folder for a PassPilot checkout (a `pyproject.toml` next to
 * `lsp_server/`), to suggest `pip install -e <checkout>`.
 */
export function findCheckout(folders: readonly string[]): string | undefined {
  for (const start of folders) {
    let dir = path.resolve(start);
    for (;;) {
      if (fs.existsSync(path.join(dir, 'pyproject.toml')) && fs.existsSync(path.join(dir, SERVER_MODULE))) return dir;
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

/**
 * The interpreter to run pip with: the interpreter command line without trailing Python options
 * (`python3 -I -S` would hide pip), but keeping launcher words (`conda run -n env python`).
 */
export function pipInterpreter(interpreter: readonly string[]): string[] {
  const argv = [...interpreter];
  while (argv.length > 1 && argv[argv.length - 1].startsWith('-')) argv.pop();
  return argv;
}

/** The error shown when the interpreter cannot import the server. */
export function missingServerMessage(interpreter: readonly string[], detail: string, checkout?: string): string {
  const py = formatCommandLine(interpreter);
  const pip = formatCommandLine(pipInterpreter(interpreter));
  const editable = checkout ? formatCommandLine([checkout]) : '<path to the passpilot checkout>';
  return (
    `PassPilot: the language server is not installed for ${py} (${detail}). ` +
    `Install it with \`${pip} -m pip install passpilot\` (or, from a checkout, \`${pip} -m pip install -e ${editable}\`), ` +
    `or set passpilot.server.pythonPath (or passpilot.server.command) to an interpreter that has it.`
  );
}
