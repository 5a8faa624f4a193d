import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  clientCommandFor,
  countBefore,
  describeMinimized,
  irAfter,
  isCancellation,
  isFunctionRef,
  normalizeTrace,
  REQUEST_CANCELLED,
  splitPassList,
  stepDescription,
  stepDiffTitle,
  stepLabel,
  stepPaths,
  traceSummary,
} from '../src/passes';

const raw = {
  function: 'grade',
  passes: 'sroa,simplifycfg',
  source: 'coreset',
  best: 8,
  oz: 10,
  original: 18,
  original_ir: 'define i32 @grade() {\n  ret i32 0\n}\n',
  final: 8,
  folded: 3,
  steps: [
    { name: 'SROAPass', target: 'grade', count: 12, diff: '--- before\n+++ after\n', ir: 'after sroa' },
    { name: 'SimplifyCFGPass', target: 'grade', count: 8, diff: '', ir: 'after simplifycfg' },
  ],
};

test('a trace from the server, and what the view shows of it', () => {
  const t = normalizeTrace(raw)!;
  assert.equal(t.steps.length, 2);
  assert.equal(traceSummary(t), '@grade: 18 → 8 instrs in 2 steps (3 passes that changed nothing folded)');
  assert.equal(stepLabel(t, 0), '1. SROAPass');
  assert.equal(stepDescription(t, 0), '18 → 12 (−6)');
  assert.equal(stepDescription(t, 1), '12 → 8 (−4)');
  assert.equal(countBefore(t, 1), 12);
  assert.equal(stepDiffTitle(t, 1), '@grade 2/2 SimplifyCFGPass: 12 → 8 (−4)');
  assert.equal(irAfter(t, 0), raw.original_ir);
  assert.equal(irAfter(t, 2), 'after simplifycfg');
  assert.deepEqual(stepPaths('a"b', 4, 1), { before: '/4/a_b/1.ll', after: '/4/a_b/2.ll' });
});

test('payloads that are not traces are refused, not half-shown', () => {
  assert.equal(normalizeTrace(null), undefined);
  assert.equal(normalizeTrace({ ...raw, steps: 'x' }), undefined);
  assert.equal(normalizeTrace({ ...raw, steps: [{ name: 'X' }] }), undefined);
  assert.equal(normalizeTrace({ ...raw, final: '8' }), undefined);
  const sparse = normalizeTrace({ function: 'f', passes: 'p', original: 1, final: 1, steps: [] })!;
  assert.equal(sparse.folded, 0);
  assert.equal(traceSummary(sparse), '@f: 1 → 1 instrs in 0 steps (0 passes that changed nothing folded)');
});

test('the minimized list message', () => {
  const r = describeMinimized({
    function: 'weighted_sum',
    passes: 'sroa,instcombine<max-iterations=4>,simplifycfg<no-speculate-blocks>,gvn,instcombine',
    minimized: 'sroa,simplifycfg<no-speculate-blocks>',
    count: 13,
    removed: ['instcombine<max-iterations=4>', 'gvn', 'instcombine'],
    measured: 8,
  });
  assert.equal(r.ok, true);
  assert.equal(r.passes, 'sroa,simplifycfg<no-speculate-blocks>');
  assert.equal(r.text, 'PassPilot: @weighted_sum needs 2 of 5 passes for the same 13 instructions: sroa,simplifycfg<no-speculate-blocks>');
  const none = describeMinimized({ function: 'f', passes: 'default<Oz>', minimized: 'default<Oz>', count: 6, removed: [] });
  assert.match(none.text, /no pass of @f's list can go \(6 instructions\)/);
  assert.equal(describeMinimized(undefined).ok, false);
});

test('pass lists split at top-level commas only', () => {
  assert.deepEqual(splitPassList('a,function(b,c),d<x;y>,e'), ['a', 'function(b,c)', 'd<x;y>', 'e']);
  assert.deepEqual(splitPassList('default<Oz>'), ['default<Oz>']);
});

test('lens commands run as the extension\'s commands; unknown ones stay', () => {
  assert.equal(clientCommandFor('passpilot.optimizeFunction'), 'passpilot.client.optimizeFunctionAtCursor');
  assert.equal(clientCommandFor('passpilot.previewFunction'), 'passpilot.client.showOptimizedDiff');
  assert.equal(clientCommandFor('passpilot.showPassTrace'), 'passpilot.client.explainPasses');
  assert.equal(clientCommandFor(''), undefined);
  assert.equal(clientCommandFor('passpilot.insertPassList'), undefined);
  assert.ok(isFunctionRef({ uri: 'file:///a.ll', function: 'f' }));
  assert.ok(!isFunctionRef({ uri: 'file:///a.ll', position: { line: 1 } }));
});

test('a cancelled request is told apart from a failure', () => {
  assert.ok(isCancellation(new Error('x'), true));
  assert.ok(isCancellation({ code: REQUEST_CANCELLED, message: 'cancelled' }, false));
  assert.ok(!isCancellation({ code: -32803, message: 'no function' }, false));
});
