// package.json must mirror docs/design.md (the client/server contract) and the pure modules.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLIENT_SETTING_DEFAULTS, MODEL_PROFILES, SERVER_SETTING_DEFAULTS } from '../src/settings';
import { LENS_COMMANDS } from '../src/passes';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const props: Record<string, { default: unknown; minimum?: number; enum?: string[]; type: string }> =
  pkg.contributes.configuration.properties;
const designPath = path.resolve(root, '..', 'docs', 'design.md');

const SERVER_COMMANDS = [
  'passpilot.optimizeFunction',
  'passpilot.insertPassList',
  'passpilot.optimizeModule',
  'passpilot.previewFunction',
  'passpilot.showPassTrace',
  'passpilot.deepOptimizeFunction',
];

test('settings in package.json are the contract keys plus the client-only keys, with the same defaults', () => {
  const expected: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(SERVER_SETTING_DEFAULTS)) expected[`passpilot.${k}`] = v;
  for (const [k, v] of Object.entries(CLIENT_SETTING_DEFAULTS)) expected[`passpilot.${k}`] = v;
  assert.deepEqual(Object.keys(props).sort(), Object.keys(expected).sort());
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(props[k].default, v, k);
  assert.deepEqual(props['passpilot.model.profile'].enum, [...MODEL_PROFILES]);
  assert.equal(props['passpilot.model.samples'].minimum, 1);
  assert.equal(props['passpilot.model.gpuLayers'].minimum, -1);
  assert.equal(props['passpilot.budget'].minimum, 0);
  assert.equal(props['passpilot.server.command'].type, 'array');
});

test('settings match the table of docs/design.md', (t) => {
  if (!fs.existsSync(designPath)) return t.skip('docs/design.md not found');
  const md = fs.readFileSync(designPath, 'utf8');
  // Rows of the settings table: | `key` | type | `default` | meaning |  (cells may contain `\|`)
  const section = md.slice(md.indexOf('## Settings'), md.indexOf('\n## ', md.indexOf('## Settings') + 1));
  const table = new Map<string, { type: string; dflt: unknown }>();
  for (const line of section.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const key = /^`([\w.]+)`$/.exec(cells[1] ?? '');
    const dflt = /^`(.*)`$/.exec(cells[3] ?? '');
    if (key && dflt) table.set(key[1], { type: cells[2], dflt: JSON.parse(dflt[1]) });
  }
  assert.deepEqual([...table.keys()].sort(), Object.keys(SERVER_SETTING_DEFAULTS).sort());
  for (const [k, { type, dflt }] of table) {
    assert.deepEqual(dflt, SERVER_SETTING_DEFAULTS[k as keyof typeof SERVER_SETTING_DEFAULTS], k);
    const p = props[`passpilot.${k}`];
    if (type.startsWith('integer')) assert.equal(p.type, 'integer', k);
    else assert.equal(p.type, 'string', k);
  }
  for (const profile of MODEL_PROFILES) assert.ok(md.includes(`"${profile}"`), profile);
  for (const cmd of SERVER_COMMANDS) assert.ok(md.includes('`' + cmd + '`'), cmd);
});

test('client command ids never collide with the server command ids', () => {
  const ids: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
  for (const id of ids) {
    assert.ok(id.startsWith('passpilot.client.'), id);
    assert.ok(!SERVER_COMMANDS.includes(id), id);
  }
  for (const needed of [
    'passpilot.client.optimizeFunctionAtCursor',
    'passpilot.client.optimizeModule',
    'passpilot.client.insertPassList',
    'passpilot.client.showOptimizedDiff',
    'passpilot.client.restartServer',
    'passpilot.client.explainPasses',
    'passpilot.client.minimizePassList',
  ]) {
    assert.ok(ids.includes(needed), needed);
  }
  for (const menu of ['commandPalette', 'editor/context']) {
    for (const item of pkg.contributes.menus[menu]) {
      assert.ok(ids.includes(item.command), item.command);
      assert.equal(item.when, 'editorLangId == llvm');
    }
  }
  const titles = pkg.contributes.commands.map((c: { category: string; title: string }) => `${c.category}: ${c.title}`);
  assert.ok(titles.includes('PassPilot: Optimize function at cursor'));
  assert.ok(titles.includes('PassPilot: Show optimized IR diff'));
});

test('the pass explorer view and the lens commands it maps exist', () => {
  const views = pkg.contributes.views.explorer.map((v: { id: string; name: string }) => `${v.id}=${v.name}`);
  assert.ok(views.includes('passpilot.passes=PassPilot: Passes'));
  const ids: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
  for (const client of Object.values(LENS_COMMANDS)) assert.ok(ids.includes(client), client);
  for (const server of Object.keys(LENS_COMMANDS)) assert.ok(SERVER_COMMANDS.includes(server), server);
});

test('language configuration: comments, brackets and folding on define ... { / }', () => {
  const conf = JSON.parse(fs.readFileSync(path.join(root, 'language-configuration.json'), 'utf8'));
  assert.equal(conf.comments.lineComment, ';');
  assert.deepEqual(conf.brackets[0], ['{', '}']);
  const start = new RegExp(conf.folding.markers.start);
  const end = new RegExp(conf.folding.markers.end);
  assert.ok(start.test('define dso_local i32 @main(i32 noundef %0, ptr noundef %1) #0 {'));
  assert.ok(start.test('define internal void @"quoted name"() { ; comment'));
  assert.ok(!start.test('declare i32 @printf(ptr noundef, ...) #1'));
  assert.ok(end.test('}'));
  const lang = pkg.contributes.languages[0];
  assert.equal(lang.id, 'llvm');
  assert.deepEqual(lang.extensions, ['.ll']);
  assert.equal(pkg.contributes.grammars[0].language, 'llvm');
  assert.ok(pkg.activationEvents.includes('onLanguage:llvm'));
});

test('pinned exact versions', () => {
  for (const deps of [pkg.dependencies, pkg.devDependencies]) {
    for (const [name, v] of Object.entries(deps)) assert.match(v as string, /^\d+\.\d+\.\d+$/, name);
  }
});
