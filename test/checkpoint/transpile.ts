import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/**
 * Transpiles a TypeScript entry file and everything it imports relatively into outDir, keeping
 * the folder layout, so a child `node` process can run it (Node 20 cannot run .ts itself).
 * Returns the path of the entry's .js file.
 */
export function transpileTree(entry: string, root: string, outDir: string): string {
  const done = new Set<string>();
  const visit = (file: string) => {
    if (done.has(file)) return;
    done.add(file);
    const src = readFileSync(file, 'utf8');
    const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: file });
    const dest = join(outDir, relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, out.outputText);
    for (const m of src.matchAll(/from\s+'(\.{1,2}\/[^']+)\.js'/g)) visit(resolve(dirname(file), `${m[1]}.ts`));
  };
  visit(resolve(entry));
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}');
  return join(outDir, relative(root, resolve(entry))).replace(/\.ts$/, '.js');
}
