// Fails CI when the PostgreSQL suites did not run, and prints the plain closing line.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let passed = 0;
let failed = 0;
let skipped = 0;
let pgPassed = 0;
let pgSkipped = 0;
for (const file of report.testResults) {
  for (const t of file.assertionResults) {
    const isPg = t.ancestorTitles.some((a) => a.includes('[postgres]'));
    if (t.status === 'passed') {
      passed++;
      if (isPg) pgPassed++;
    } else if (t.status === 'failed') failed++;
    else {
      skipped++;
      if (isPg) pgSkipped++;
    }
  }
}
console.log(`PostgreSQL tests: ${pgPassed} passed, ${pgSkipped} skipped`);
if (pgPassed === 0 || pgSkipped > 0) {
  console.log('the PostgreSQL suites did not all run');
  process.exitCode = 1;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0) process.exitCode = 1;
