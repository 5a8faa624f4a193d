import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { compilerLabel, formatStatus, modelLabel, normalizeStatus, optLabel } from '../src/status';

test('idle status shows model and opt', () => {
  const v = formatStatus(
    normalizeStatus({
      opt: { path: '/usr/bin/opt-22', version: 'LLVM version 22.1.3' },
      model: { path: '/models/passpilot-q4.gguf', profile: 'passpilot' },
      busy: false,
      message: null,
    }),
  );
  assert.equal(v.text, '$(zap) PassPilot: model passpilot-q4 · opt 22.1.3');
  assert.equal(v.severity, 'ok');
  assert.match(v.tooltip, /\/usr\/bin\/opt-22/);
  assert.match(v.tooltip, /passpilot-q4\.gguf/);
});

test('busy status spins without repeating the job title that its progress shows', () => {
  const v = formatStatus(normalizeStatus({ opt: { path: 'opt', version: '22' }, model: null, busy: true, message: 'PassPilot: optimizing @f' }));
  assert.equal(v.text, '$(sync~spin) PassPilot: no model · opt 22');
  assert.doesNotMatch(v.text, /optimizing/);
  assert.match(v.tooltip, /optimizing @f/);
});

test('the status names the bundled model and the compiler backend', () => {
  const v = formatStatus(
    normalizeStatus({ opt: { path: '/usr/bin/opt-22', version: '22.1.8' }, backend: 'libllvm', model: { path: '', profile: 'passpilot' }, busy: false, message: null }),
  );
  assert.equal(v.text, '$(zap) PassPilot: model passpilot (bundled) · libLLVM 22.1.8');
  assert.match(v.tooltip, /libLLVM in worker processes/);
  assert.equal(compilerLabel({ opt: { path: 'opt', version: '22.1.8' }, backend: 'opt' }), 'opt 22.1.8');
});

test('missing opt is a warning; missing model is shown as such', () => {
  const v = formatStatus(normalizeStatus({ opt: null, model: null, busy: false, message: null }));
  assert.equal(v.severity, 'warning');
  assert.equal(v.text, '$(warning) PassPilot: no model · opt not found');
});

test('labels', () => {
  assert.equal(modelLabel({ path: '', profile: 'passpilot' }), 'model passpilot (bundled)');
  assert.equal(modelLabel({ path: 'C:\\m\\x.GGUF', profile: 'p' }), 'model x');
  assert.equal(optLabel({ path: '/usr/lib/llvm-22/bin/opt', version: '' }), 'opt');
  assert.equal(optLabel({ path: '/usr/bin/opt-22', version: '22.1.0' }), 'opt 22.1.0');
});

test('garbage payloads are normalised', () => {
  assert.deepEqual(normalizeStatus(undefined), { opt: null, model: null, backend: null, busy: false, message: null });
  assert.deepEqual(normalizeStatus({ busy: 'yes', message: '' }), { opt: null, model: null, backend: null, busy: false, message: null });
});

