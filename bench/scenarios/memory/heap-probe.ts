/**
 * BENCH ONLY, preloaded into the Node servers of the memory scenario (`node --import tsx --import
 * <this> server.ts`): answers `{type:'heap?'}` on the IPC channel with the process's heap figures, so
 * that every Node contender's heap is read the same way, and `{type:'snapshot?', path}` by writing a
 * heap snapshot there. Costs nothing per connection; never keeps the process alive.
 */
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';

if (process.send) {
  process.on('message', (m: { type?: string; path?: string }) => {
    // `--heap-snapshot` runs of the memory scenario: where the heap goes (bench/lib/heap-snapshot.ts reads it).
    if (m?.type === 'snapshot?' && typeof m.path === 'string') {
      let path: string | null = null;
      try {
        path = writeHeapSnapshot(m.path);
      } catch {
        // no snapshot: the scenario says so
      }
      process.send?.({ type: 'snapshot', path });
      return;
    }
    if (m?.type !== 'heap?') return;
    // V8's own figures only: process.memoryUsage() reads /proc/self and throws EMFILE in a server
    // that has used up its file descriptors (the scale run gets there).
    const hs = getHeapStatistics();
    process.send?.({
      type: 'heap',
      heapUsed: hs.used_heap_size,
      heapTotal: hs.total_heap_size,
      external: hs.external_memory,
      totalPhysical: hs.total_physical_size,
    });
  });
  process.channel?.unref();
}
