// PassPilot VS Code client: starts the Python language server and exposes its commands.
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
} from 'vscode-languageclient/node';
import {
  checkImportable,
  findCheckout,
  formatCommandLine,
  interpreterFromPythonApi,
  missingServerMessage,
  resolveServerCommand,
  ResolvedServerCommand,
} from './serverCommand';
import { configurationFor, needsRestart, SECTION, toServerSettings } from './settings';
import { formatStatus, normalizeStatus } from './status';
import {
  describeDeepSearch,
  describeInsert,
  describeModule,
  describeOptimize,
  diffTitle,
  PREVIEW_SCHEME,
  PreviewResult,
  previewPaths,
} from './results';
import {
  clientCommandFor,
  describeMinimized,
  FunctionRef,
  isCancellation,
  isFunctionRef,
  MINIMIZE_REQUEST,
  normalizeTrace,
  PASS_TRACE_REQUEST,
} from './passes';
import { PassExplorer } from './passExplorer';

const OPEN_SETTINGS = 'Open Settings';
const SHOW_LOG = 'Show Log';
const RETRY = 'Retry';

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;
let statusItem: vscode.StatusBarItem;
let starting: Promise<void> | undefined;
let previewSerial = 0;
const previewContents = new Map<string, string>();
let explorer: PassExplorer;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('PassPilot');
  statusItem = vscode.window.createStatusBarItem('passpilot.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'PassPilot';
  statusItem.command = 'passpilot.client.showLog';
  setStatusText('$(loading~spin) PassPilot: starting', 'Starting the PassPilot language server');
  statusItem.show();

  const previewChanged = new vscode.EventEmitter<vscode.Uri>();
  explorer = new PassExplorer();
  context.subscriptions.push(
    output,
    statusItem,
    previewChanged,
    explorer,
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, {
      onDidChange: previewChanged.event,
      provideTextDocumentContent: (uri) => previewContents.get(uri.path) ?? '',
    }),
    vscode.commands.registerCommand('passpilot.client.restartServer', () => restart()),
    vscode.commands.registerCommand('passpilot.client.showLog', () => output.show(true)),
    vscode.commands.registerCommand('passpilot.client.optimizeFunctionAtCursor', (arg?: unknown) =>
      optimizeFunctionAtCursor(arg),
    ),
    vscode.commands.registerCommand('passpilot.client.deepOptimizeFunction', (arg?: unknown) => deepOptimizeFunction(arg)),
    vscode.commands.registerCommand('passpilot.client.optimizeModule', (arg?: unknown) => optimizeModule(arg)),
    vscode.commands.registerCommand('passpilot.client.insertPassList', (arg?: unknown) => insertPassList(arg)),
    vscode.commands.registerCommand('passpilot.client.showOptimizedDiff', (arg?: unknown) => showOptimizedDiff(arg)),
    vscode.commands.registerCommand('passpilot.client.explainPasses', (arg?: unknown) => explainPasses(arg)),
    vscode.commands.registerCommand('passpilot.client.minimizePassList', (arg?: unknown) => minimizePassList(arg)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      if (needsRestart((s) => e.affectsConfiguration(s))) {
        output.appendLine('[client] passpilot.server.* changed: restarting the server');
        void restart();
      } else if (!client) {
        // A previous start failed; a settings change is a good moment to try again.
        void restart();
      }
      // Other settings reach a running server through synchronize.configurationSection.
    }),
    { dispose: () => void stopClient() },
  );

  await restart();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}

function setStatusText(text: string, tooltip: string, severity: 'ok' | 'warning' | 'error' = 'ok'): void {
  statusItem.text = text;
  statusItem.tooltip = tooltip;
  statusItem.accessibilityInformation = { label: text.replace(/\$\([^)]*\)\s*/g, ''), role: 'button' };
  statusItem.backgroundColor =
    severity === 'error'
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : severity === 'warning'
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
}

function workspaceDir(): string | undefined {
  return vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
}

function settingsGetter(scope?: vscode.ConfigurationScope): (key: string) => unknown {
  const cfg = vscode.workspace.getConfiguration(SECTION, scope);
  return (key) => cfg.get(key);
}

async function pythonExtensionInterpreter(): Promise<string[] | undefined> {
  const ext = vscode.extensions.getExtension('ms-python.python');
  if (!ext) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    return await interpreterFromPythonApi(api, vscode.workspace.workspaceFolders?.[0]?.uri);
  } catch (e) {
    output.appendLine(`[client] could not ask the Python extension for its interpreter: ${String(e)}`);
    return undefined;
  }
}

async function resolveCommand(): Promise<ResolvedServerCommand> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const command = cfg.get<string[]>('server.command') ?? [];
  const pythonPath = cfg.get<string>('server.pythonPath') ?? '';
  const needExtension = command.length === 0 && !pythonPath.trim();
  return resolveServerCommand({
    command,
    pythonPath,
    pythonExtension: needExtension ? await pythonExtensionInterpreter() : undefined,
    workspaceFolder: workspaceDir(),
  });
}

async function stopClient(): Promise<void> {
  const c = client;
  client = undefined;
  if (!c) return;
  try {
    if (c.state !== State.Stopped) await c.stop(5000);
  } catch (e) {
    output.appendLine(`[client] stopping the server: ${String(e)}`);
  }
  try {
    await c.dispose(2000);
  } catch {
    // already stopped
  }
}

function restart(): Promise<void> {
  // Serialise starts: a second request waits for the first and then starts again.
  const previous = starting ?? Promise.resolve();
  const next = previous.then(async () => {
    await stopClient();
    await startClient();
  });
  starting = next.finally(() => {
    if (starting === next) starting = undefined;
  });
  return next;
}

async function startClient(): Promise<void> {
  setStatusText('$(loading~spin) PassPilot: starting', 'Starting the PassPilot language server');
  const resolved = await resolveCommand();
  const cwd = workspaceDir();
  const argv = [resolved.command, ...resolved.args];
  output.appendLine(`[client] server command (${resolved.source}): ${formatCommandLine(argv)}`);

  if (resolved.interpreter) {
    const check = await checkImportable(resolved.interpreter, { cwd });
    if (!check.ok) {
      const checkout = findCheckout([
        ...(vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
        path.dirname(vscode.extensions.getExtension('passpilot.passpilot')?.extensionPath ?? ''),
      ]);
      const message = missingServerMessage(resolved.interpreter, check.detail, checkout);
      output.appendLine(`[client] ${message}`);
      setStatusText('$(error) PassPilot: server not installed', message, 'error');
      void showStartError(message);
      return;
    }
  }

  const serverOptions: ServerOptions = {
    command: resolved.command,
    args: resolved.args,
    transport: TransportKind.stdio,
    options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: '1' } },
  };
  // A server that dies before initializing (bad interpreter, missing dependency, ...) is not
  // restarted: the user gets one error with the way out. Once it has run, crashes restart it,
  // up to 4 times in 3 minutes.
  let initialized = false;
  const crashes: number[] = [];
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'llvm' },
      { scheme: 'untitled', language: 'llvm' },
    ],
    outputChannel: output,
    initializationOptions: toServerSettings(settingsGetter()),
    synchronize: { configurationSection: SECTION },
    initializationFailedHandler: (error) => {
      output.appendLine(`[client] initialization failed: ${errorText(error)}`);
      return false; // do not retry; startClient reports it once
    },
    errorHandler: {
      error: (_error, _message, count) => ({
        action: initialized && (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
      }),
      closed: () => {
        if (!initialized) return { action: CloseAction.DoNotRestart, handled: true };
        const now = Date.now();
        crashes.push(now);
        while (crashes.length && now - crashes[0] > 3 * 60_000) crashes.shift();
        if (crashes.length <= 4) {
          output.appendLine('[client] the server exited; restarting it');
          return { action: CloseAction.Restart, handled: true };
        }
        return {
          action: CloseAction.DoNotRestart,
          message:
            'PassPilot: the language server stopped 5 times in 3 minutes and will not be restarted. ' +
            'See the PassPilot output, then use "PassPilot: Restart server".',
        };
      },
    },
    middleware: {
      // The server's lenses name its own commands (any editor can run them); here they run as the
      // extension's commands, with progress, a cancel button, the diff editor and the pass explorer.
      provideCodeLenses: async (document, token, next) => {
        const lenses = await next(document, token);
        for (const lens of lenses ?? []) {
          const mapped = clientCommandFor(lens.command?.command);
          if (lens.command && mapped) lens.command = { ...lens.command, command: mapped };
        }
        return lenses;
      },
      // Likewise the code actions that carry a command (the deep search: it runs for seconds).
      provideCodeActions: async (document, range, context, token, next) => {
        const actions = await next(document, range, context, token);
        for (const action of actions ?? []) {
          if (action instanceof vscode.CodeAction) {
            const mapped = clientCommandFor(action.command?.command);
            if (action.command && mapped) action.command = { ...action.command, command: mapped };
          } else {
            const mapped = clientCommandFor(action.command);
            if (mapped) action.command = mapped;
          }
        }
        return actions;
      },
      workspace: {
        // Answer `workspace/configuration` for our section with exactly the contract's object.
        configuration: async (params, token, next) => {
          const defaults = await next(params, token);
          if (defaults instanceof ResponseError) return defaults;
          return params.items.map((item, i) => {
            if (item.section === SECTION || item.section?.startsWith(SECTION + '.')) {
              const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
              return configurationFor(item.section, toServerSettings(settingsGetter(scope)));
            }
            return defaults[i];
          });
        },
      },
    },
  };

  const c = new LanguageClient('passpilot', 'PassPilot', serverOptions, clientOptions);
  c.onNotification('passpilot/status', (raw: unknown) => {
    const view = formatStatus(normalizeStatus(raw));
    setStatusText(view.text, view.tooltip, view.severity);
  });
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped && client === c) {
      setStatusText('$(error) PassPilot: server stopped', 'The PassPilot language server stopped. See the log.', 'error');
    }
  });
  client = c;
  try {
    await c.start();
    // start() resolves even when the server died while initializing (the client is then
    // stopped): only a running client counts as started.
    if (c.state !== State.Running) throw new Error('the server process exited while starting');
    initialized = true;
    if (statusItem.text.includes('starting')) {
      setStatusText('$(zap) PassPilot', 'PassPilot language server running (waiting for its status)');
    }
  } catch (e) {
    const message =
      `PassPilot: the language server (${formatCommandLine(argv)}) failed to start (${errorText(e)}). ` +
      `Its own error output is in the PassPilot output; the command line is set by passpilot.server.command / passpilot.server.pythonPath.`;
    output.appendLine(`[client] ${message}`);
    setStatusText('$(error) PassPilot: server failed', message, 'error');
    if (client === c) client = undefined;
    try {
      await c.dispose(2000);
    } catch {
      // ignore
    }
    void showStartError(message);
  }
}

async function showStartError(message: string): Promise<void> {
  const choice = await vscode.window.showErrorMessage(message, OPEN_SETTINGS, SHOW_LOG, RETRY);
  if (choice === OPEN_SETTINGS) {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'passpilot.server');
  } else if (choice === SHOW_LOG) {
    output.show(true);
  } else if (choice === RETRY) {
    await restart();
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The LLVM editor a command acts on: the one given (context menu passes a URI) or the active one. */
function targetEditor(arg: unknown): vscode.TextEditor | undefined {
  const active = vscode.window.activeTextEditor;
  if (arg instanceof vscode.Uri) {
    const ed = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === arg.toString());
    if (ed) return ed;
  }
  if (active && active.document.languageId === 'llvm') return active;
  void vscode.window.showWarningMessage('PassPilot: open an LLVM IR (.ll) file first.');
  return undefined;
}

async function runningClient(): Promise<LanguageClient | undefined> {
  if (starting) await starting;
  if (client && client.state === State.Running) return client;
  const choice = await vscode.window.showErrorMessage('PassPilot: the language server is not running.', RETRY, SHOW_LOG);
  if (choice === RETRY) await restart();
  else if (choice === SHOW_LOG) output.show(true);
  return client && client.state === State.Running ? client : undefined;
}

type Reporter = vscode.Progress<{ message?: string; increment?: number }>;

/** Send a request with a progress notification whose Cancel button cancels it (`$/cancelRequest`);
 * the server stops the job and changes nothing. Undefined when it failed or was cancelled (the user is told). */
async function requestWithProgress<T>(
  title: string,
  what: string,
  send: (c: LanguageClient, token: vscode.CancellationToken, progress: Reporter) => Promise<T>,
): Promise<T | undefined> {
  const c = await runningClient();
  if (!c) return undefined;
  let cancelled = false;
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => {
          cancelled = true;
        });
        const result = await send(c, token, progress);
        if (token.isCancellationRequested) throw new vscode.CancellationError();
        return result;
      },
    );
  } catch (e) {
    if (isCancellation(e, cancelled)) {
      output.appendLine(`[client] ${what} cancelled`);
      void vscode.window.showInformationMessage(`PassPilot: ${what} cancelled; nothing was changed.`);
      return undefined;
    }
    const message = `PassPilot: ${what} failed: ${errorText(e)}`;
    output.appendLine(`[client] ${message}`);
    void vscode.window.showErrorMessage(message, SHOW_LOG).then((c) => c === SHOW_LOG && output.show(true));
    return undefined;
  }
}

let progressSerial = 0;

/** Run a server command with the notification's own progress token (`workDoneToken`): the server's
 * progress messages (candidates tried, best so far; functions left) show in the notification that has
 * the Cancel button, and the percentage fills its bar. */
async function executeServerCommand<T>(title: string, command: string, args: object): Promise<T | undefined> {
  // "PassPilot: deep search of @f cancelled; …" / "… failed (passpilot.deepOptimizeFunction): …"
  const what = `${title.replace(/^PassPilot: /, '')} (${command})`;
  return requestWithProgress(title, what, async (c, token, progress) => {
    const workDoneToken = `passpilot-client-${process.pid}-${++progressSerial}`;
    let reported = 0;
    const listener = c.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      if (value.kind === 'end') return;
      const increment = typeof value.percentage === 'number' ? Math.max(0, value.percentage - reported) : undefined;
      if (increment !== undefined) reported += increment;
      progress.report({ message: value.message, increment });
    });
    try {
      return (await c.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args], workDoneToken }, token)) as T;
    } finally {
      listener.dispose();
    }
  });
}

function functionArgs(c: LanguageClient | undefined, editor: vscode.TextEditor): object {
  const uri = c ? c.code2ProtocolConverter.asUri(editor.document.uri) : editor.document.uri.toString();
  const pos = editor.selection.active;
  return { uri, position: { line: pos.line, character: pos.character } };
}

/** What a function command acts on: the function a code lens names, else the function at the cursor. */
function functionTarget(arg: unknown): object | undefined {
  if (isFunctionRef(arg)) return { uri: arg.uri, function: arg.function } satisfies FunctionRef;
  const editor = targetEditor(arg);
  return editor ? functionArgs(client, editor) : undefined;
}

function report(r: { ok: boolean; text: string }): void {
  if (!r.text) return;
  if (r.ok) void vscode.window.showInformationMessage(r.text);
  else void vscode.window.showWarningMessage(r.text);
}

async function optimizeFunctionAtCursor(arg: unknown): Promise<void> {
  const target = functionTarget(arg);
  if (!target) return;
  const result = await executeServerCommand<unknown>('PassPilot: optimizing function', 'passpilot.optimizeFunction', target);
  if (result !== undefined) report(describeOptimize(result as never));
}

async function deepOptimizeFunction(arg: unknown): Promise<void> {
  const target = functionTarget(arg);
  if (!target) return;
  const name = isFunctionRef(arg) ? `@${arg.function}` : 'function';
  const result = await executeServerCommand<unknown>(`PassPilot: deep search of ${name}`, 'passpilot.deepOptimizeFunction', target);
  if (result !== undefined) report(describeDeepSearch(result as never));
}

async function optimizeModule(arg: unknown): Promise<void> {
  const editor = targetEditor(arg);
  if (!editor) return;
  const uri = client ? client.code2ProtocolConverter.asUri(editor.document.uri) : editor.document.uri.toString();
  const result = await executeServerCommand<unknown>('PassPilot: optimizing module', 'passpilot.optimizeModule', { uri });
  if (result !== undefined) report(describeModule(result));
}

async function insertPassList(arg: unknown): Promise<void> {
  const editor = targetEditor(arg);
  if (!editor) return;
  const result = await executeServerCommand<unknown>(
    'PassPilot: finding a pass list',
    'passpilot.insertPassList',
    functionArgs(client, editor),
  );
  if (result !== undefined) report(describeInsert(result));
}

async function showOptimizedDiff(arg: unknown): Promise<void> {
  const target = functionTarget(arg);
  if (!target) return;
  const result = await executeServerCommand<Partial<PreviewResult>>(
    'PassPilot: optimizing (preview)',
    'passpilot.previewFunction',
    target,
  );
  if (!result) return;
  if (typeof result.original_text !== 'string' || typeof result.optimized_text !== 'string') {
    void vscode.window.showWarningMessage('PassPilot: the server returned no preview for this function.');
    return;
  }
  const paths = previewPaths(result.function ?? 'function', ++previewSerial);
  previewContents.set(paths.left, result.original_text);
  previewContents.set(paths.right, result.optimized_text);
  const left = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: paths.left });
  const right = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: paths.right });
  await vscode.commands.executeCommand('vscode.diff', left, right, diffTitle(result), { preview: true });
}

async function explainPasses(arg: unknown): Promise<void> {
  const target = functionTarget(arg);
  if (target) await showPassTrace(target);
}

/** Ask for the trace of a function (`passes` given, or its best list), show its steps and the last one's diff. */
async function showPassTrace(target: object): Promise<void> {
  const raw = await requestWithProgress('PassPilot: tracing the passes', 'the pass trace', (c, token) =>
    c.sendRequest(PASS_TRACE_REQUEST, target, token),
  );
  if (raw === undefined) return;
  const trace = normalizeTrace(raw);
  if (!trace) {
    void vscode.window.showWarningMessage('PassPilot: the server returned no pass trace for this function.');
    return;
  }
  output.appendLine(
    `[client] pass trace of @${trace.function}: ${trace.original} -> ${trace.final} instructions in ${trace.steps.length} steps (${trace.passes})`,
  );
  await explorer.show(trace);
  if (trace.steps.length) await explorer.showStep(trace.steps.length - 1);
}

async function minimizePassList(arg: unknown): Promise<void> {
  const target = functionTarget(arg);
  if (!target) return;
  const raw = await requestWithProgress('PassPilot: minimizing the pass list', 'the minimization', (c, token) =>
    c.sendRequest(MINIMIZE_REQUEST, target, token),
  );
  if (raw === undefined) return;
  const r = describeMinimized(raw);
  if (!r.ok || !r.passes) {
    void vscode.window.showWarningMessage(r.text);
    return;
  }
  const choice = await vscode.window.showInformationMessage(r.text, 'Copy', 'Explain');
  if (choice === 'Copy') await vscode.env.clipboard.writeText(r.passes);
  else if (choice === 'Explain') await showPassTrace({ ...target, passes: r.passes });
}
