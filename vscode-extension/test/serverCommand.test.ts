import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  checkImportable,
  expandVariables,
  findCheckout,
  formatCommandLine,
  interpreterFromPythonApi,
  missingServerMessage,
  pipInterpreter,
  resolveServerCommand,
} from '../src/serverCommand';

test('default: python3 -m lsp_server', () => {
  assert.deepEqual(resolveServerCommand({}), {
    command: 'python3',
    args: ['-m', 'lsp_server'],
    interpreter: ['python3'],
    source: 'default',
  });
});

test('server.command wins over everything and is used as given', () => {
  const r = resolveServerCommand({
    command: ['passpilot', 'serve'],
    pythonPath: '/venv/bin/python',
    pythonExtension: ['/other/python'],
  });
  assert.deepEqual(r, { command: 'passpilot', args: ['serve'], interpreter: undefined, source: 'server.command' });
});

test('server.command of the form <python> [opts] -m lsp_server exposes the interpreter to check', () => {
  const r = resolveServerCommand({ command: ['/venv/bin/python', '-X', 'utf8', '-m', 'lsp_server', '--tcp'] });
  assert.equal(r.command, '/venv/bin/python');
  assert.deepEqual(r.args, ['-X', 'utf8', '-m', 'lsp_server', '--tcp']);
  assert.deepEqual(r.interpreter, ['/venv/bin/python', '-X', 'utf8']);
});

test('empty or blank server.command entries are ignored', () => {
  assert.equal(resolveServerCommand({ command: [] }).source, 'default');
  assert.equal(resolveServerCommand({ command: ['  ', ''] }).source, 'default');
  assert.equal(resolveServerCommand({ command: null }).source, 'default');
});

test('pythonPath wins over the Python extension', () => {
  const r = resolveServerCommand({ pythonPath: ' /venv/bin/python ', pythonExtension: ['/ext/python'] });
  assert.deepEqual(r, {
    command: '/venv/bin/python',
    args: ['-m', 'lsp_server'],
    interpreter: ['/venv/bin/python'],
    source: 'server.pythonPath',
  });
});

test('Python extension interpreter (possibly several words) is used when nothing is set', () => {
  const r = resolveServerCommand({ pythonExtension: ['conda', 'run', '-n', 'pp', 'python'] });
  assert.equal(r.command, 'conda');
  assert.deepEqual(r.args, ['run', '-n', 'pp', 'python', '-m', 'lsp_server']);
  assert.deepEqual(r.interpreter, ['conda', 'run', '-n', 'pp', 'python']);
  assert.equal(r.source, 'python-extension');
});

test('variables are expanded in settings', () => {
  const r = resolveServerCommand({
    pythonPath: '${workspaceFolder}/.venv/bin/python',
    workspaceFolder: '/ws',
  });
  assert.equal(r.command, '/ws/.venv/bin/python');
  assert.equal(expandVariables('~/x', { home: '/home/u' }), path.join('/home/u', 'x'));
  assert.equal(expandVariables('${userHome}/y', { home: '/home/u' }), '/home/u/y');
  assert.equal(expandVariables('${env:PP_TEST}/z', { env: { PP_TEST: '/e' } }), '/e/z');
  assert.equal(expandVariables('${workspaceFolder}/a', {}), '${workspaceFolder}/a');
});

test('Python extension API: environments API first, then execution details', async () => {
  const envApi = {
    environments: {
      getActiveEnvironmentPath: () => ({ id: 'x', path: '/envs/x' }),
      resolveEnvironment: async () => ({ executable: { uri: { fsPath: '/envs/x/bin/python' } } }),
    },
    settings: { getExecutionDetails: () => ({ execCommand: ['/old/python'] }) },
  };
  assert.deepEqual(await interpreterFromPythonApi(envApi), ['/envs/x/bin/python']);
  const unresolved = {
    environments: { getActiveEnvironmentPath: () => ({ path: '/envs/y/bin/python' }), resolveEnvironment: async () => undefined },
  };
  assert.deepEqual(await interpreterFromPythonApi(unresolved), ['/envs/y/bin/python']);
  const oldApi = { settings: { getExecutionDetails: () => ({ execCommand: ['/old/python', '-E'] }) } };
  assert.deepEqual(await interpreterFromPythonApi(oldApi), ['/old/python', '-E']);
  assert.equal(await interpreterFromPythonApi(undefined), undefined);
  assert.equal(await interpreterFromPythonApi({}), undefined);
  assert.equal(await interpreterFromPythonApi({ settings: { getExecutionDetails: () => ({ execCommand: [] }) } }), undefined);
});

test('formatCommandLine quotes what a shell would split', () => {
  assert.equal(formatCommandLine(['/a b/python', '-m', 'lsp_server']), `'/a b/python' -m lsp_server`);
});

function python(): string | undefined {
  for (const p of ['python3', '/usr/bin/python3']) {
    try {
      require('node:child_process').execFileSync(p, ['-c', 'pass'], { stdio: 'ignore' });
      return p;
    } catch {
      // try next
    }
  }
  return undefined;
}

test('checkImportable: a module found on the cwd imports, a missing one does not', async (t) => {
  const py = python();
  if (!py) return t.skip('no python3');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp-import-'));
  try {
    const env = { ...process.env, PYTHONPATH: '' };
    const missing = await checkImportable([py, '-I'], { cwd: dir, env });
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /lsp_server/);
    fs.mkdirSync(path.join(dir, 'lsp_server'));
    fs.writeFileSync(path.join(dir, 'lsp_server', '__init__.py'), '');
    const found = await checkImportable([py], { cwd: dir, env: { ...env, PYTHONPATH: dir } });
    assert.deepEqual(found, { ok: true, detail: '' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('checkImportable: an interpreter that does not exist is reported, not thrown', async () => {
  const r = await checkImportable(['/nonexistent/python-xyz']);
  assert.equal(r.ok, false);
  assert.match(r.detail, /not found/);
});

test('findCheckout finds a pyproject.toml next to lsp_server/ upwards', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp-checkout-'));
  try {
    fs.mkdirSync(path.join(dir, 'lsp_server'));
    fs.writeFileSync(path.join(dir, 'pyproject.toml'), '');
    fs.mkdirSync(path.join(dir, 'examples', 'deep'), { recursive: true });
    assert.equal(findCheckout([path.join(dir, 'examples', 'deep')]), dir);
    assert.equal(findCheckout([os.tmpdir()]), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('missing-server message says how to install', () => {
  const m = missingServerMessage(['/venv/bin/python'], "No module named 'lsp_server'", '/src/passpilot');
  assert.match(m, /pip install passpilot/);
  assert.match(m, /pip install -e \/src\/passpilot/);
  assert.match(m, /\/venv\/bin\/python/);
  assert.match(m, /passpilot\.server\.pythonPath/);
  assert.match(missingServerMessage(['python3'], 'x'), /pip install -e <path to the passpilot checkout>/);
  const isolated = missingServerMessage(['/usr/bin/python3', '-I', '-S'], 'x');
  assert.match(isolated, /not installed for \/usr\/bin\/python3 -I -S/);
  assert.match(isolated, /`\/usr\/bin\/python3 -m pip install passpilot`/);
});

test('pip runs with the interpreter minus trailing options, launchers kept', () => {
  assert.deepEqual(pipInterpreter(['python3', '-I', '-S']), ['python3']);
  assert.deepEqual(pipInterpreter(['conda', 'run', '-n', 'pp', 'python']), ['conda', 'run', '-n', 'pp', 'python']);
  assert.deepEqual(pipInterpreter(['python', '-X', 'utf8']), ['python', '-X', 'utf8']);
  assert.deepEqual(pipInterpreter(['-weird']), ['-weird']);
});
