/**
 * The `Leases` role: run-once-in-the-cluster work — each connector holds a lease, so that it runs on
 * exactly one node and fails over when that node dies; and once-per-window claims, so that an alert
 * digest goes out once for the cluster, not once per node.
 *
 * The embedded default (`memory-leases.ts`) grants everything to this process. The shared one
 * (`postgres-leases.ts`) keeps the leases in the cluster's PostgreSQL. Both pass
 * `test/unit/leases.conformance.test.ts`.
 *
 * Contract
 * --------
 * - `acquire(name, holder, ttlMs)` takes the lease when it is free or expired, or renews it when
 *   `holder` holds it; true when `holder` holds it for the next `ttlMs`. Atomic across the cluster:
 *   of concurrent acquirers of a free lease exactly one gets it. A holder renews at `ttlMs / 3`; one
 *   that fails to renew must stop the work before `ttlMs` has passed since its last success (the
 *   caller keeps that clock: a lease is only as good as its last renewal).
 * - `release(name, holder)` frees the lease at once if `holder` holds it (a clean stop hands the
 *   connector over without waiting for the TTL); idempotent.
 * - `holder(name)` says who holds an unexpired lease (for `/healthz` and `GET /connectors`).
 * - `claimOnce(key, ttlMs)` is true for exactly one caller in the cluster per `key` within `ttlMs`.
 * - `unclaim(key)` gives a claim back (the work it guarded failed and may be tried again); idempotent.
 * - Every method may reject when the store is unreachable: the caller treats the lease as not held.
 */
export interface Leases {
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  holder(name: string): Promise<string | undefined>;
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  unclaim(key: string): Promise<void>;
  close(): Promise<void>;
}
