import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { countFunction, functions, withCopies } from './ir.mjs';

const ir = `; comment
define dso_local i32 @f(i32 noundef %0) #0 {
  %2 = add nsw i32 %0, 1
  switch i32 %2, label %5 [
    i32 0, label %3
    i32 1, label %4
  ]

3:                                                ; preds = %1
  ret i32 1

4:
    #dbg_value(i32 %2, !1, !DIExpression(), !2)
  ret i32 2

5:
  ret i32 0
}

declare i32 @g(i32)

define internal void @"quoted name"() {
entry:
  call void @h(i32 0, ptr @"x y")
  ret void
}
`;

test('counts instruction lines; switch counts once; labels, debug records and comments do not count', () => {
  assert.deepEqual(
    functions(ir).map(({ name, line, count }) => ({ name, line, count })),
    [
      { name: 'f', line: 1, count: 5 },
      { name: 'quoted name', line: 21, count: 2 },
    ],
  );
  assert.equal(countFunction(ir, 'quoted name'), 2);
});

test('withCopies appends renamed copies, calls renamed alike', () => {
  const src = 'define i32 @g(i32 %0) {\n  ret i32 %0\n}\n\ndefine i32 @f(i32 %0) {\n  %2 = call i32 @g(i32 %0)\n  ret i32 %2\n}\n';
  const out = withCopies(src, 2);
  assert.deepEqual(functions(out).map((f) => f.name), ['g', 'f', 'g.copy1', 'f.copy1', 'g.copy2', 'f.copy2']);
  assert.match(out, /define i32 @f\.copy2\(i32 %0\) \{\n  %2 = call i32 @g\.copy2\(i32 %0\)/);
  assert.ok(out.startsWith(src.trimEnd()));
});
