/**
 * The panel's lists, one page at a time: the datasets granted to the member and those they
 * may request, each asked of the catalogue with ?limit=&cursor= (and the search), the next
 * page loaded when the member scrolls near the end (or presses "More").
 */
import { requestAPI } from '../request';
import { el, size } from './dom';
import { IDatasetSummary, IDatasetsNavigator, IPage, IRequestable } from './types';

export const PAGE_SIZE = 50;

/** A list that appends pages of `path` as asked; `render` makes one item. */
export class PagedList<T> {
  readonly node: HTMLElement;
  private _list: HTMLUListElement;
  private _more: HTMLButtonElement;
  private _cursor: string | null = null;
  private _loading = false;
  private _done = false;
  private _count = 0;

  constructor(
    private _path: string,
    private _query: Record<string, string>,
    private _render: (item: T) => HTMLElement,
    private _empty: string
  ) {
    this._list = el('ul', { class: 'aistudio-Datasets-list' });
    this._more = el('button', { class: 'jp-Button aistudio-Datasets-more' }, 'More');
    this._more.onclick = () => void this.loadMore();
    this.node = el('div', { class: 'aistudio-Datasets-paged' });
    this.node.append(this._list, this._more);
  }

  get exhausted(): boolean {
    return this._done;
  }

  /** Appends the next page (nothing while one is loading or after the last). */
  async loadMore(): Promise<void> {
    if (this._loading || this._done) {
      return;
    }
    this._loading = true;
    this._more.textContent = 'Loading…';
    try {
      const query: Record<string, string> = { ...this._query, limit: String(PAGE_SIZE) };
      if (this._cursor) {
        query.cursor = this._cursor;
      }
      const page = await requestAPI<IPage<T>>(this._path, {}, query);
      for (const item of page.items) {
        this._list.appendChild(this._render(item));
      }
      this._count += page.items.length;
      this._cursor = page.next_cursor;
      this._done = !page.next_cursor;
    } finally {
      this._loading = false;
      this._more.textContent = 'More';
      this._more.hidden = this._done;
      if (this._done && !this._count) {
        this._list.replaceChildren(el('li', { class: 'aistudio-Datasets-empty' }, this._empty));
      }
    }
  }
}

function datasetLink(title: string, open: () => void): HTMLAnchorElement {
  const link = el('a', { href: '#' }, title);
  link.onclick = (event: MouseEvent) => {
    event.preventDefault();
    open();
  };
  return link;
}

export function grantedItem(d: IDatasetSummary, nav: IDatasetsNavigator): HTMLElement {
  const item = el('li', { class: 'aistudio-Datasets-item', 'data-dataset': d.name });
  item.append(datasetLink(d.title || d.name, () => nav.openDataset(d.name)), el('div', { class: 'aistudio-Datasets-meta' },
    `${d.name} · ${d.format} · ${d.rows ?? '?'} rows · ${size(d.size_bytes)}` + (d.tags.length ? ` · ${d.tags.join(', ')}` : '')));
  return item;
}

export function requestableItem(d: IRequestable, nav: IDatasetsNavigator): HTMLElement {
  const item = el('li', { class: 'aistudio-Datasets-item', 'data-requestable': d.name });
  item.append(datasetLink(d.title || d.name, () => nav.openRequestable(d)),
    el('div', { class: 'aistudio-Datasets-meta' }, `${d.name} · ${d.description}`));
  if (d.request && d.request.status === 'pending') {
    item.appendChild(el('div', { class: 'aistudio-Datasets-status' }, 'Request pending'));
  } else {
    if (d.request && d.request.status === 'denied') {
      item.appendChild(el('div', { class: 'aistudio-Datasets-status' }, `Denied: ${d.request.comment ?? ''}`));
    }
    const ask = el('button', { class: 'jp-Button' }, 'Request access');
    ask.onclick = () => void nav.requestAccess(d.name);
    item.appendChild(ask);
  }
  return item;
}
