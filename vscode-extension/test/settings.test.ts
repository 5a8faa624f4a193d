import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { configurationFor, needsRestart, SERVER_SETTING_DEFAULTS, toServerSettings } from '../src/settings';

const fromObject = (o: Record<string, unknown>) => (key: string) => o[key];

test('defaults give the nested object of docs/design.md', () => {
  assert.deepEqual(toServerSettings(fromObject({})), {
    opt: { path: '' },
    model: { path: '', profile: 'passpilot', samples: 4, gpuLayers: 0, threads: 0 },
    budget: 10,
    cache: { dir: '' },
    compiler: { backend: 'auto' },
    deepSearch: { seconds: 10 },
  });
});

test('dotted VS Code keys map to nested server keys', () => {
  const s = toServerSettings(
    fromObject({
      'opt.path': '/usr/bin/opt-22',
      'model.path': 'none',
      'model.profile': 'llm-compiler-ftd',
      'model.samples': 8,
      'model.gpuLayers': -1,
      'model.threads': 2,
      budget: 0,
      'cache.dir': '/tmp/pp-cache',
      'compiler.backend': 'opt',
      'deepSearch.seconds': 30,
      'server.command': ['x'],
      'server.pythonPath': '/py',
    }),
  );
  assert.deepEqual(s, {
    opt: { path: '/usr/bin/opt-22' },
    model: { path: 'none', profile: 'llm-compiler-ftd', samples: 8, gpuLayers: -1, threads: 2 },
    budget: 0,
    cache: { dir: '/tmp/pp-cache' },
    compiler: { backend: 'opt' },
    deepSearch: { seconds: 30 },
  });
  assert.ok(!('server' in s), 'client-only settings are not sent to the server');
});

test('invalid values fall back to defaults', () => {
  const s = toServerSettings(
    fromObject({
      'opt.path': 42,
      'model.profile': 'gpt',
      'model.samples': 0,
      'model.gpuLayers': -2,
      'model.threads': -1,
      budget: -1,
      'cache.dir': null,
      'compiler.backend': 'fast',
      'deepSearch.seconds': 3601,
    }),
  );
  assert.equal(s.opt.path, '');
  assert.equal(s.model.profile, 'passpilot');
  assert.equal(s.model.samples, SERVER_SETTING_DEFAULTS['model.samples']);
  assert.equal(s.model.gpuLayers, 0);
  assert.equal(s.model.threads, 0);
  assert.equal(s.budget, 10);
  assert.equal(s.cache.dir, '');
  assert.equal(s.compiler.backend, 'auto');
  assert.equal(s.deepSearch.seconds, 10);
});

test('numbers are truncated to integers and numeric strings accepted', () => {
  const s = toServerSettings(fromObject({ 'model.samples': 2.7, budget: '25', 'model.gpuLayers': '-1' }));
  assert.equal(s.model.samples, 2);
  assert.equal(s.budget, 25);
  assert.equal(s.model.gpuLayers, -1);
});

test('workspace/configuration answers whole section, sub-sections and leaves', () => {
  const s = toServerSettings(fromObject({ 'model.samples': 3 }));
  assert.deepEqual(configurationFor('passpilot', s), s);
  assert.deepEqual(configurationFor('passpilot.model', s), s.model);
  assert.equal(configurationFor('passpilot.model.samples', s), 3);
  assert.equal(configurationFor('passpilot.budget', s), 10);
  assert.equal(configurationFor('passpilot.nope', s), null);
  assert.equal(configurationFor('editor', s), undefined);
  assert.equal(configurationFor('passpilotx', s), undefined);
  assert.equal(configurationFor(undefined, s), undefined);
});

test('only passpilot.server.* changes restart the server', () => {
  assert.equal(needsRestart((sec) => sec === 'passpilot.server'), true);
  assert.equal(needsRestart((sec) => sec === 'passpilot.model'), false);
});
