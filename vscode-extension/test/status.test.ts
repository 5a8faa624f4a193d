import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatStatus, modelLabel, normalizeStatus, optLabel } from '../src/status';

test('idle status shows model and opt', () => {
  const v = formatStatus(
    normalizeStatus({
      opt: { path: '/usr/bin/opt-22', version: 'LLVM version 22.1.3' },
      model: { path: '/models/passpilot-q4.gguf', profile: 'passpilot' },
      busy: false,
      message: null,
    }),
  );
  assert.equal(v.text, '$(zap) PassPilot: passpilot-q4 · opt 22.1.3');
  assert.equal(v.severity, 'ok');
  assert.match(v.tooltip, /\/usr\/bin\/opt-22/);
  assert.match(v.tooltip, /passpilot-q4\.gguf/);
});

test('busy status spins', () => {
  const v = formatStatus(normalizeStatus({ opt: { path: 'opt', version: '22' }, model: null, busy: true, message: 'optimizing @f' }));
  assert.equal(v.text, '$(sync~spin) PassPilot: optimizing @f');
  const w = formatStatus(normalizeStatus({ opt: null, model: null, busy: true, message: null }));
  assert.equal(w.text, '$(sync~spin) PassPilot: working');
});

test('missing opt is a warning; missing model is shown as such', () => {
  const v = formatStatus(normalizeStatus({ opt: null, model: null, busy: false, message: null }));
  assert.equal(v.severity, 'warning');
  assert.equal(v.text, '$(warning) PassPilot: no model · opt not found');
});

test('labels', () => {
  assert.equal(modelLabel({ path: '', profile: 'passpilot' }), 'passpilot');
  assert.equal(modelLabel({ path: 'C:\\m\\x.GGUF', profile: 'p' }), 'x');
  assert.equal(optLabel({ path: '/usr/lib/llvm-22/bin/opt', version: '' }), 'opt');
  assert.equal(optLabel({ path: '/usr/bin/opt-22', version: '22.1.0' }), 'opt 22.1.0');
});

test('garbage payloads are normalised', () => {
  assert.deepEqual(normalizeStatus(undefined), { opt: null, model: null, busy: false, message: null });
  assert.deepEqual(normalizeStatus({ busy: 'yes', message: '' }), { opt: null, model: null, busy: false, message: null });
});

test('busy status does not repeat the product name of a server job title', () => {
  const view = formatStatus({ opt: { path: '/usr/bin/opt-22', version: '22.1.8' }, model: null, busy: true, message: 'PassPilot: measuring functions' });
  assert.equal(view.text, '$(sync~spin) PassPilot: measuring functions');
});
