import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { describeDeepSearch, describeInsert, describeModule, describeOptimize, diffTitle, passesText, previewPaths } from '../src/results';

test('optimize result message', () => {
  const r = describeOptimize({ applied: true, function: 'f', original: 57, oz: 31, best: 27, passes: 'instcombine', source: 'model' });
  assert.deepEqual(r, { ok: true, text: 'PassPilot: optimized @f: 57 → 27 instructions (-Oz 31, −12.9%) [model].' });
  assert.equal(
    describeOptimize({ applied: true, function: 'f', original: 10, best: 8 }).text,
    'PassPilot: optimized @f: 10 → 8 instructions.',
  );
  assert.equal(describeOptimize({ applied: false, function: 'g' }).ok, false);
  assert.equal(describeOptimize(null).ok, false);
});

test('module and insert messages', () => {
  assert.equal(describeModule({ applied: true, functions: [{}, {}] }).text, 'PassPilot: optimized 2 of 2 functions.');
  // Module totals over the rewritten functions; those left as written are counted apart.
  assert.equal(
    describeModule({
      applied: true,
      functions: [
        { function: 'a', original: 1000, oz: 500, best: 450, applied: true },
        { function: 'b', original: 234, oz: 100, best: 100, applied: true },
        { function: 'c', original: 50, oz: 20, best: 20, applied: false, reason: 'behaviour differs' },
      ],
    }).text,
    'PassPilot: optimized 2 of 3 functions: 1,234 → 550 instructions (-Oz 600, −8.3%); 1 left as written.',
  );
  assert.equal(describeModule({ applied: false, functions: [] }).ok, false);
  assert.equal(describeInsert({ applied: true, passes: ['a', 'b'] }).text, "PassPilot: inserted -passes='a,b'.");
  assert.equal(passesText('x,y'), 'x,y');
  assert.equal(passesText(undefined), '');
});

test('diff title and preview paths', () => {
  assert.equal(diffTitle({ function: 'main', original: 10, best: 7 }), '@main: as written ↔ optimized (10 → 7 instrs)');
  assert.deepEqual(previewPaths('a"b', 3), { left: '/3/written/a_b.ll', right: '/3/optimized/a_b.ll' });
});

test('a refusal the server already explained adds no second message', () => {
  assert.equal(describeOptimize({ applied: false, function: 'f', reason: 'the rewritten module did not verify' } as never).text, '');
  assert.equal(describeModule({ applied: false, functions: [], reason: 'document changed' }).text, '');
  assert.equal(describeInsert({ applied: false, reason: 'no function here' }).text, '');
  assert.match(describeOptimize({ applied: false, function: 'f' }).text, /@f was not changed/);
});

test('describeDeepSearch adds the search figures to the optimize message', () => {
  const r = describeDeepSearch({
    applied: true, function: 'f', original: 57, oz: 31, best: 27, passes: 'instcombine', source: 'search (refined from coreset)',
    search: { tried: 12345, seconds: 9.96, stopped: 'deadline', winner_source: 'search (refined from coreset)' },
  });
  assert.equal(r.ok, true);
  assert.match(r.text, /^PassPilot: optimized @f: 57 → 27 instructions \(-Oz 31, −12\.9%\) \[search \(refined from coreset\)\] · deep search: 12,345 candidates in 10\.0 s\.$/);
  // Not applied, or no figures: the optimize message alone.
  assert.deepEqual(describeDeepSearch({ applied: false, function: 'f', reason: 'x' } as never), describeOptimize({ applied: false, function: 'f', reason: 'x' } as never));
  assert.equal(describeDeepSearch({ applied: true, function: 'f', original: 3, best: 2 }).text, describeOptimize({ applied: true, function: 'f', original: 3, best: 2 }).text);
});

