// The "PassPilot: Passes" view: the steps of a pass trace; a step opens a diff editor of the module
// before and after that pass (documents of the `passpilot-trace` scheme).
import * as vscode from 'vscode';
import {
  irAfter,
  PassTrace,
  stepDescription,
  stepDiffTitle,
  stepLabel,
  stepPaths,
  stepTooltip,
  TRACE_SCHEME,
  traceSummary,
} from './passes';

export const VIEW_ID = 'passpilot.passes';
export const SHOW_STEP = 'passpilot.client.showPassStep';

interface StepItem {
  index: number;
}

export class PassExplorer implements vscode.TreeDataProvider<StepItem>, vscode.TextDocumentContentProvider, vscode.Disposable {
  private trace: PassTrace | undefined;
  private serial = 0;
  private readonly contents = new Map<string, string>();
  private readonly treeChanged = new vscode.EventEmitter<StepItem | undefined>();
  private readonly documentChanged = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChangeTreeData = this.treeChanged.event;
  readonly onDidChange = this.documentChanged.event;
  readonly view: vscode.TreeView<StepItem>;
  private readonly disposables: vscode.Disposable[];

  constructor() {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: false });
    this.disposables = [
      this.view,
      this.treeChanged,
      this.documentChanged,
      vscode.workspace.registerTextDocumentContentProvider(TRACE_SCHEME, this),
      vscode.commands.registerCommand(SHOW_STEP, (index: number) => this.showStep(index)),
    ];
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  /** Show a new trace in the view and reveal it. */
  async show(trace: PassTrace): Promise<void> {
    this.trace = trace;
    this.serial++;
    this.contents.clear();
    this.view.message = traceSummary(trace);
    this.view.description = `@${trace.function}`;
    this.treeChanged.fire(undefined);
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
  }

  getTreeItem(element: StepItem): vscode.TreeItem {
    const t = this.trace!;
    const item = new vscode.TreeItem(stepLabel(t, element.index), vscode.TreeItemCollapsibleState.None);
    item.description = stepDescription(t, element.index);
    item.tooltip = stepTooltip(t, element.index);
    item.id = `${this.serial}/${element.index}`;
    const after = t.steps[element.index].count;
    const before = element.index === 0 ? t.original : t.steps[element.index - 1].count;
    item.iconPath = new vscode.ThemeIcon(after < before ? 'arrow-down' : after > before ? 'arrow-up' : 'circle-small');
    item.command = { command: SHOW_STEP, title: 'Show the diff of this pass', arguments: [element.index] };
    return item;
  }

  getChildren(element?: StepItem): StepItem[] {
    if (element || !this.trace) return [];
    return this.trace.steps.map((_, index) => ({ index }));
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.path) ?? '';
  }

  /** Open the diff editor of step `index` (0-based): the module before the pass ↔ after it. */
  async showStep(index: number): Promise<void> {
    const t = this.trace;
    if (!t || index < 0 || index >= t.steps.length) return;
    const paths = stepPaths(t.function, this.serial, index);
    this.contents.set(paths.before, irAfter(t, index));
    this.contents.set(paths.after, irAfter(t, index + 1));
    const before = vscode.Uri.from({ scheme: TRACE_SCHEME, path: paths.before });
    const after = vscode.Uri.from({ scheme: TRACE_SCHEME, path: paths.after });
    await vscode.commands.executeCommand('vscode.diff', before, after, stepDiffTitle(t, index), { preview: true });
  }
}
