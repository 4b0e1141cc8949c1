import type { RunnerTask as Task, RunnerTestFile as File } from 'vitest';

/** Prints one plain closing line, `N passed, N failed, N skipped`, after vitest's own report. */
export default class SummaryReporter {
  onFinished(files: File[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: Task) => {
      if (t.type === 'suite') return t.tasks.forEach(walk);
      const s = t.result?.state;
      if (s === 'pass') passed++;
      else if (s === 'fail') failed++;
      else skipped++;
    };
    for (const f of files) {
      if (f.result?.state === 'fail' && f.tasks.length === 0) failed++;
      f.tasks.forEach(walk);
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
