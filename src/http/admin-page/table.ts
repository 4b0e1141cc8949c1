/**
 * Tables kept in step with the API's lists without being rebuilt: a row is replaced only when what it
 * shows changed, so keyboard focus on a row's button survives the refreshes (and comes back to the
 * same button when its row is redrawn). Every cell carries its column's name (`data-label`), which
 * the narrow layout shows in front of the value; explicit ARIA roles keep the table a table for
 * screen readers when that layout turns its parts into blocks.
 */

export type CellValue = string | number | Node | null | undefined;

export interface Column<T> {
  /** The header as shown (and the label of the cell in the narrow layout). */
  label: string;
  /** `data-col` of the cell (tests and styles find cells by it). */
  col: string;
  value: (item: T) => CellValue;
}

/** A button inside a row; `action` finds it again when the row is redrawn. */
export function button(text: string, accessibleName: string, action: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', accessibleName);
  b.dataset.action = action;
  b.addEventListener('click', onClick);
  return b;
}

/** A `<time>` showing an ISO time in the reader's locale (the ISO text in `datetime` and the tooltip). */
export function time(iso: string | null | undefined): CellValue {
  if (!iso) return '–';
  const t = document.createElement('time');
  t.dateTime = iso;
  t.title = iso;
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  t.textContent = today ? d.toLocaleTimeString() : d.toLocaleString();
  return t;
}

/** A `<code>` element (ids, topics, patterns). */
export function code(text: string): Node {
  const c = document.createElement('code');
  c.textContent = text;
  return c;
}

/** Gives the header row its roles (once, at start). */
export function prepareTable(table: HTMLTableElement): void {
  table.setAttribute('role', 'table');
  for (const tr of table.tHead?.rows ?? []) {
    tr.setAttribute('role', 'row');
    for (const th of tr.cells) th.setAttribute('role', 'columnheader');
  }
  for (const part of [table.tHead, ...table.tBodies]) part?.setAttribute('role', 'rowgroup');
}

function signature(cells: CellValue[]): string {
  return JSON.stringify(cells.map((c) => (c instanceof Element ? c.outerHTML : c instanceof Node ? c.textContent : c)));
}

/**
 * Shows `items` in `table`'s body, in order: one row per item, keyed by `key` (`data-key`), the first
 * column a row header. `actions` adds the last cell's buttons. An empty list shows `empty`.
 */
export function syncRows<T>(
  table: HTMLTableElement,
  items: T[],
  key: (item: T) => string,
  columns: Column<T>[],
  opts: { empty: string; actions?: (item: T) => HTMLButtonElement[]; mark?: (item: T, tr: HTMLTableRowElement) => void },
): void {
  const body = table.tBodies[0]!;
  const width = columns.length + (opts.actions ? 1 : 0);
  const old = new Map<string, HTMLTableRowElement>();
  for (const tr of [...body.rows]) {
    if (tr.dataset.key !== undefined) old.set(tr.dataset.key, tr);
    else tr.remove();
  }
  const active = document.activeElement;
  let previous: HTMLTableRowElement | null = null;
  for (const item of items) {
    const k = key(item);
    const values = columns.map((c) => c.value(item));
    const buttons = opts.actions?.(item) ?? [];
    const sig = signature([...values, ...buttons.map((b) => `${b.dataset.action}:${b.textContent}`)]);
    let tr = old.get(k);
    old.delete(k);
    if (!tr || tr.dataset.sig !== sig) {
      const fresh = document.createElement('tr');
      fresh.setAttribute('role', 'row');
      fresh.dataset.key = k;
      fresh.dataset.sig = sig;
      values.forEach((v, i) => {
        const cell = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) (cell as HTMLTableCellElement).scope = 'row';
        cell.setAttribute('role', i === 0 ? 'rowheader' : 'cell');
        cell.dataset.col = columns[i]!.col;
        cell.dataset.label = columns[i]!.label;
        if (v instanceof Node) cell.append(v);
        else cell.textContent = v === null || v === undefined || v === '' ? '–' : String(v);
        fresh.append(cell);
      });
      if (opts.actions) {
        const cell = document.createElement('td');
        cell.setAttribute('role', 'cell');
        cell.className = 'actions';
        cell.dataset.col = 'actions';
        cell.append(...buttons);
        fresh.append(cell);
      }
      opts.mark?.(item, fresh);
      if (tr) {
        const focused = active instanceof HTMLElement && tr.contains(active) ? active.dataset.action : undefined;
        tr.replaceWith(fresh);
        if (focused) fresh.querySelector<HTMLElement>(`[data-action="${focused}"]`)?.focus();
      }
      tr = fresh;
    }
    const at: ChildNode | null = previous ? previous.nextSibling : body.firstChild;
    if (at !== tr) body.insertBefore(tr, at);
    previous = tr;
  }
  for (const tr of old.values()) {
    // The focused row went away: focus the table's section heading rather than losing it to <body>.
    if (active instanceof HTMLElement && tr.contains(active)) table.closest('section')?.querySelector<HTMLElement>('h2')?.focus();
    tr.remove();
  }
  if (!items.length) {
    const tr = document.createElement('tr');
    tr.setAttribute('role', 'row');
    tr.className = 'empty';
    const td = document.createElement('td');
    td.setAttribute('role', 'cell');
    td.colSpan = width;
    td.textContent = opts.empty;
    tr.append(td);
    body.append(tr);
  }
}

/** Shows (or hides) the caption's "first N shown" note of a paged list. */
export function morePages(table: HTMLTableElement, shown: number, nextCursor: string | null | undefined): void {
  const more = table.caption?.querySelector<HTMLElement>('.more');
  if (!more) return;
  more.hidden = !nextCursor;
  more.textContent = nextCursor ? `(the first ${shown} shown)` : '';
}
