/**
 * Topic names and patterns.
 *
 * A topic is 1–200 characters: segments of `[A-Za-z0-9_-]` separated by `.` (`orders.eu.created`).
 * A pattern is a topic whose segments may also be `*` (exactly one segment) or, as the last segment
 * only, `>` (one or more segments): `orders.*`, `orders.>`.
 */
export const MAX_TOPIC_LENGTH = 200;

const SEGMENT = /^[A-Za-z0-9_-]+$/;

export function isValidTopic(topic: unknown): topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) return false;
  for (const seg of topic.split('.')) if (!SEGMENT.test(seg)) return false;
  return true;
}

export function isValidPattern(pattern: unknown): pattern is string {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_TOPIC_LENGTH) return false;
  const segs = pattern.split('.');
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (seg === '*') continue;
    if (seg === '>' && i === segs.length - 1) continue;
    if (!SEGMENT.test(seg)) return false;
  }
  return true;
}

export function isWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('>');
}

/** Does `pattern` match the concrete `topic`? */
export function matches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg === '>') return t.length > i;
    if (i >= t.length) return false;
    if (seg !== '*' && seg !== t[i]) return false;
  }
  return p.length === t.length;
}

/**
 * Does the ACL pattern `acl` cover every topic the pattern `sub` can match? Used to decide whether a
 * client may subscribe to a wildcard: `orders.>` covers `orders.*` and `orders.eu.>`; `orders.*`
 * covers `orders.eu` but not `orders.>`.
 */
export function covers(acl: string, sub: string): boolean {
  const a = acl.split('.');
  const s = sub.split('.');
  for (let i = 0; i < a.length; i++) {
    const seg = a[i];
    if (seg === '>') return s.length > i;
    if (i >= s.length) return false;
    const other = s[i];
    if (other === '>') return false;
    if (seg === '*') continue;
    if (seg !== other) return false;
  }
  return a.length === s.length;
}

/** True when any of the ACL patterns covers `topicOrPattern`. */
export function allowedBy(acl: readonly string[], topicOrPattern: string): boolean {
  for (const p of acl) if (covers(p, topicOrPattern)) return true;
  return false;
}
