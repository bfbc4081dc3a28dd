// Syntax check of every PowerShell file in the repository with tree-sitter-powershell.
// Prints one line per file ("ok" or the first error with line:column) and a closing
// "syntax: N passed, N failed" line; exit code 1 when any file has a parse error.
import Parser from 'tree-sitter';
import PowerShell from 'tree-sitter-powershell';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..', '..'));
const isPowerShell = (name) => /\.(ps1|psm1|psd1)$/i.test(name);
const files = [];
// In a git checkout: the files git tracks and the untracked ones it does not ignore (not the tools under .tools/,
// build outputs or packages); elsewhere every file below root but the usual build and package folders.
let listed = null;
try {
  listed = execFileSync('git', ['-C', root, 'ls-files', '-co', '--exclude-standard', '-z'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .split('\0').filter((f) => f && isPowerShell(f)).map((f) => join(root, f)).filter((p) => existsSync(p));
} catch {
  listed = null;
}
if (listed) files.push(...listed);
else {
  const skip = new Set(['node_modules', 'bin', 'obj', '.git', '.tools', '.gpu-host', '.whl', 'artifacts']);
  (function walk(dir) {
    for (const name of readdirSync(dir)) {
      if (skip.has(name)) continue;
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (isPowerShell(name)) files.push(p);
    }
  })(root);
}

const parser = new Parser();
parser.setLanguage(PowerShell);
let passed = 0, failed = 0;
for (const f of files.sort()) {
  let src = readFileSync(f, 'utf8');
  if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
  // tree-sitter's Node binding parses large inputs through a callback; keep chunks small.
  const tree = parser.parse((i) => src.slice(i, i + 4096));
  const errors = [];
  (function find(node) {
    if (node.type === 'ERROR' || node.isMissing) errors.push(node);
    else if (node.hasError) for (const c of node.children) find(c);
  })(tree.rootNode);
  const rel = relative(root, f);
  if (errors.length === 0 && !tree.rootNode.hasError) {
    passed++;
    console.log(`  ok    ${rel}`);
  } else {
    failed++;
    const e = errors[0] ?? tree.rootNode;
    const what = e.isMissing ? `missing ${e.type}` : `unexpected '${src.slice(e.startIndex, Math.min(e.endIndex, e.startIndex + 40)).replace(/\n/g, '\\n')}'`;
    console.log(`  FAIL  ${rel}:${e.startPosition.row + 1}:${e.startPosition.column + 1}: parse error, ${what}`);
  }
}
console.log(`syntax: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
