// Tokenizes LLVM IR with the real TextMate engine (vscode-textmate + Oniguruma, as in VS Code).
import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as oniguruma from 'vscode-oniguruma';
import * as vsctm from 'vscode-textmate';

const root = path.resolve(__dirname, '..', '..');
let grammar: vsctm.IGrammar;

before(async () => {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName: string) => {
      if (scopeName !== 'source.llvm') return null;
      const file = path.join(root, 'syntaxes', 'llvm.tmLanguage.json');
      return vsctm.parseRawGrammar(fs.readFileSync(file, 'utf8'), file);
    },
  });
  const g = await registry.loadGrammar('source.llvm');
  assert.ok(g);
  grammar = g;
});

/** token text -> innermost scope, for one line (or several, state carried over). */
function tokens(text: string): Array<[string, string]> {
  let state = vsctm.INITIAL;
  const out: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      const s = line.slice(t.startIndex, t.endIndex);
      if (s.trim()) out.push([s, t.scopes[t.scopes.length - 1]]);
    }
    state = r.ruleStack;
  }
  return out;
}

function scopeOf(text: string, piece: string): string {
  const hit = tokens(text).find(([s]) => s === piece);
  assert.ok(hit, `no token ${JSON.stringify(piece)} in ${JSON.stringify(tokens(text))}`);
  return hit[1];
}

test('define line: keyword, linkage, types, function name, locals, attribute group', () => {
  const line = 'define dso_local noundef i32 @main(i32 noundef %argc, ptr %argv) local_unnamed_addr #0 {';
  assert.equal(scopeOf(line, 'define'), 'storage.type.function.llvm');
  assert.equal(scopeOf(line, 'dso_local'), 'storage.modifier.linkage.llvm');
  assert.equal(scopeOf(line, 'noundef'), 'storage.modifier.attribute.llvm');
  assert.equal(scopeOf(line, 'i32'), 'storage.type.llvm');
  assert.equal(scopeOf(line, '@main'), 'entity.name.function.llvm');
  assert.equal(scopeOf(line, '%argc'), 'variable.other.local.llvm');
  assert.equal(scopeOf(line, 'ptr'), 'storage.type.llvm');
  assert.equal(scopeOf(line, '#0'), 'entity.name.tag.attribute-group.llvm');
});

test('instructions, flags, predicates, numbers, labels', () => {
  assert.equal(scopeOf('  %3 = add nsw i32 %1, 42', 'add'), 'keyword.other.instruction.llvm');
  assert.equal(scopeOf('  %3 = add nsw i32 %1, 42', 'nsw'), 'storage.modifier.flag.llvm');
  assert.equal(scopeOf('  %3 = add nsw i32 %1, 42', '%3'), 'variable.other.local.llvm');
  assert.equal(scopeOf('  %3 = add nsw i32 %1, -42', '-42'), 'constant.numeric.integer.llvm');
  assert.equal(scopeOf('  %c = icmp slt i64 %i, 10', 'slt'), 'keyword.other.predicate.llvm');
  assert.equal(scopeOf('  %c = icmp slt i64 %i, 10', 'i64'), 'storage.type.llvm');
  assert.equal(scopeOf('  br i1 %c, label %for.body, label %exit', 'br'), 'keyword.control.terminator.llvm');
  assert.equal(scopeOf('  br i1 %c, label %for.body, label %exit', 'label'), 'storage.type.llvm');
  assert.equal(scopeOf('  br i1 %c, label %for.body, label %exit', '%for.body'), 'variable.other.local.llvm');
  assert.equal(scopeOf('for.body:                                         ; preds = %entry', 'for.body'), 'entity.name.label.llvm');
  assert.equal(scopeOf('5:', '5'), 'entity.name.label.llvm');
  assert.equal(scopeOf('"odd label":', '"odd label"'), 'entity.name.label.llvm');
  assert.equal(
    scopeOf('for.body:                                         ; preds = %entry', '; preds = %entry'),
    'comment.line.semicolon.llvm',
  );
  assert.equal(scopeOf('  ret i32 0', 'ret'), 'keyword.control.terminator.llvm');
  assert.equal(scopeOf('  %r = call i32 @foo(i32 1)', '@foo'), 'entity.name.function.llvm');
  assert.equal(scopeOf('  %p = getelementptr inbounds i8, ptr %q, i64 4', 'getelementptr'), 'keyword.other.instruction.llvm');
  assert.equal(scopeOf('  %p = getelementptr inbounds i8, ptr %q, i64 4', 'inbounds'), 'storage.modifier.flag.llvm');
});

test('arbitrary-width integers, vectors and arrays', () => {
  assert.equal(scopeOf('  %w = zext i17 %v to i128', 'i17'), 'storage.type.llvm');
  assert.equal(scopeOf('  %w = zext i17 %v to i128', 'i128'), 'storage.type.llvm');
  assert.equal(scopeOf('  %w = zext i17 %v to i128', 'zext'), 'keyword.other.instruction.llvm');
  const vec = '  %s = add <4 x i32> %a, <i32 1, i32 2, i32 3, i32 4>';
  assert.equal(scopeOf(vec, '4'), 'constant.numeric.integer.llvm');
  assert.equal(scopeOf(vec, 'x'), 'keyword.operator.times.llvm');
  const sc = 'declare <vscale x 4 x float> @g(<vscale x 4 x float>)';
  assert.equal(scopeOf(sc, 'vscale'), 'storage.modifier.vscale.llvm');
  assert.equal(scopeOf(sc, 'float'), 'storage.type.llvm');
  assert.equal(scopeOf('@a = global [4 x i8] zeroinitializer', 'zeroinitializer'), 'constant.language.llvm');
  assert.equal(scopeOf('@a = global [4 x i8] zeroinitializer', '@a'), 'variable.other.global.llvm');
});

test('quoted names, strings with escapes, globals', () => {
  const s = '@.str = private unnamed_addr constant [6 x i8] c"hi\\0A\\00", align 1';
  assert.equal(scopeOf(s, '@.str'), 'variable.other.global.llvm');
  assert.equal(scopeOf(s, 'private'), 'storage.modifier.linkage.llvm');
  assert.equal(scopeOf(s, 'constant'), 'keyword.other.llvm');
  assert.equal(scopeOf(s, 'c'), 'storage.modifier.string.llvm');
  assert.equal(scopeOf(s, '\\0A'), 'constant.character.escape.llvm');
  assert.equal(scopeOf(s, 'hi'), 'string.quoted.double.llvm');
  assert.equal(scopeOf('  call void @"quoted fn"(ptr %"a b")', '@"quoted fn"'), 'entity.name.function.llvm');
  assert.equal(scopeOf('  call void @"quoted fn"(ptr %"a b")', '%"a b"'), 'variable.other.local.llvm');
  assert.equal(scopeOf('  store ptr @"g v", ptr %p', '@"g v"'), 'variable.other.global.llvm');
  assert.equal(scopeOf('%struct.S = type { i32, ptr }', '%struct.S'), 'entity.name.type.llvm');
});

test('numbers: decimals, exponents, hex floats', () => {
  assert.equal(scopeOf('  %f = fadd double %x, 1.500000e+00', '1.500000e+00'), 'constant.numeric.float.llvm');
  assert.equal(scopeOf('  %f = fadd double %x, 0x3FF8000000000000', '0x3FF8000000000000'), 'constant.numeric.float.hexadecimal.llvm');
  assert.equal(scopeOf('  %h = fadd half %x, 0xH3C00', '0xH3C00'), 'constant.numeric.float.hexadecimal.llvm');
  assert.equal(scopeOf('  %f = fadd x86_fp80 %x, 0xK3FFF8000000000000000', '0xK3FFF8000000000000000'), 'constant.numeric.float.hexadecimal.llvm');
  assert.equal(scopeOf('  %f = fadd fast double %x, 2.0', 'fast'), 'storage.modifier.flag.llvm');
});

test('metadata and debug records', () => {
  const dbg = '    #dbg_value(i32 %x, !12, !DIExpression(), !15)';
  assert.equal(scopeOf(dbg, '#dbg_value'), 'support.function.debug-record.llvm');
  assert.equal(scopeOf(dbg, '!12'), 'variable.other.metadata.llvm');
  assert.equal(scopeOf(dbg, '!DIExpression'), 'support.class.metadata.llvm');
  assert.equal(scopeOf('!llvm.module.flags = !{!0, !1}', '!llvm.module.flags'), 'variable.other.metadata.llvm');
  assert.equal(scopeOf('!0 = !{i32 7, !"PIC Level", i32 2}', 'PIC Level'), 'string.quoted.double.metadata.llvm');
  assert.equal(scopeOf('  %v = load i32, ptr %p, align 4, !tbaa !5', '!tbaa'), 'variable.other.metadata.llvm');
  assert.equal(scopeOf('!5 = !DILocalVariable(name: "x", tag: DW_TAG_arg_variable)', 'DW_TAG_arg_variable'), 'constant.language.dwarf.llvm');
});

test('top level: comments, target, attributes', () => {
  assert.equal(scopeOf('; ModuleID = \'a.c\'', "; ModuleID = 'a.c'"), 'comment.line.semicolon.llvm');
  assert.equal(scopeOf('target triple = "x86_64-pc-linux-gnu"', 'target'), 'keyword.other.llvm');
  assert.equal(scopeOf('target triple = "x86_64-pc-linux-gnu"', 'triple'), 'keyword.other.llvm');
  const a = 'attributes #0 = { noinline nounwind optnone uwtable "frame-pointer"="all" }';
  assert.equal(scopeOf(a, 'attributes'), 'keyword.other.llvm');
  assert.equal(scopeOf(a, '#0'), 'entity.name.tag.attribute-group.llvm');
  assert.equal(scopeOf(a, 'optnone'), 'storage.modifier.attribute.llvm');
  assert.equal(scopeOf(a, 'frame-pointer'), 'string.quoted.double.llvm');
  assert.equal(scopeOf('  ; a comment with @names and %locals', '; a comment with @names and %locals'), 'comment.line.semicolon.llvm');
  assert.equal(scopeOf('  %s = select i1 true, i32 1, i32 poison', 'poison'), 'constant.language.llvm');
  assert.equal(scopeOf('  %s = select i1 true, i32 1, i32 poison', 'true'), 'constant.language.llvm');
});
