import { isWildcard } from '../core/topics.ts';

interface Node<T> {
  children: Map<string, Node<T>>;
  star: Node<T> | undefined;
  /** Members whose pattern ends with `>` at this depth. */
  tail: Set<T> | undefined;
  /** Members whose pattern ends exactly here. */
  here: Set<T> | undefined;
}

const node = <T>(): Node<T> => ({ children: new Map(), star: undefined, tail: undefined, here: undefined });

/**
 * Who wants a topic: concrete topics in a hash map, wildcard patterns in a segment trie, so a publish
 * touches only the members that match it.
 */
export class SubscriptionIndex<T> {
  #exact = new Map<string, Set<T>>();
  #root: Node<T> = node();
  #patterns = 0;

  add(topicOrPattern: string, member: T): void {
    if (!isWildcard(topicOrPattern)) {
      let set = this.#exact.get(topicOrPattern);
      if (!set) this.#exact.set(topicOrPattern, (set = new Set()));
      set.add(member);
      return;
    }
    let n = this.#root;
    for (const seg of topicOrPattern.split('.')) {
      if (seg === '>') {
        (n.tail ??= new Set()).add(member);
        this.#patterns++;
        return;
      }
      let next = seg === '*' ? n.star : n.children.get(seg);
      if (!next) {
        next = node();
        if (seg === '*') n.star = next;
        else n.children.set(seg, next);
      }
      n = next;
    }
    (n.here ??= new Set()).add(member);
    this.#patterns++;
  }

  remove(topicOrPattern: string, member: T): void {
    if (!isWildcard(topicOrPattern)) {
      const set = this.#exact.get(topicOrPattern);
      if (set?.delete(member) && set.size === 0) this.#exact.delete(topicOrPattern);
      return;
    }
    if (this.#removePattern(this.#root, topicOrPattern.split('.'), 0, member)) this.#patterns--;
  }

  #removePattern(n: Node<T>, segs: string[], i: number, member: T): boolean {
    const seg = segs[i];
    let removed: boolean;
    if (seg === undefined) removed = n.here?.delete(member) ?? false;
    else if (seg === '>') removed = n.tail?.delete(member) ?? false;
    else {
      const next = seg === '*' ? n.star : n.children.get(seg);
      if (!next) return false;
      removed = this.#removePattern(next, segs, i + 1, member);
      if (removed && next.children.size === 0 && !next.star && !next.tail?.size && !next.here?.size) {
        if (seg === '*') n.star = undefined;
        else n.children.delete(seg);
      }
    }
    if (n.here?.size === 0) n.here = undefined;
    if (n.tail?.size === 0) n.tail = undefined;
    return removed;
  }

  /** Members that want `topic`, each once; undefined when none. */
  match(topic: string): ReadonlySet<T> | undefined {
    const exact = this.#exact.get(topic);
    if (this.#patterns === 0) return exact;
    const out = new Set<T>(exact);
    this.#collect(this.#root, topic.split('.'), 0, out);
    return out.size ? out : undefined;
  }

  #collect(n: Node<T>, segs: string[], i: number, out: Set<T>): void {
    if (n.tail && i < segs.length) for (const m of n.tail) out.add(m);
    if (i === segs.length) {
      if (n.here) for (const m of n.here) out.add(m);
      return;
    }
    const child = n.children.get(segs[i]!);
    if (child) this.#collect(child, segs, i + 1, out);
    if (n.star) this.#collect(n.star, segs, i + 1, out);
  }

  get size(): number {
    let n = this.#patterns;
    for (const s of this.#exact.values()) n += s.size;
    return n;
  }
}
