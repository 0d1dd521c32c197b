/**
 * AI Studio: the "Datasets" panel in JupyterLab's left sidebar.
 *
 * A thin client: everything comes from this server's /aistudio-datasets/api/ handlers,
 * which pass requests on to the hub's datasets catalogue; the hub decides what the
 * member may see. Lists the member's datasets and those they may request a page at a
 * time, searched on the server as the member types (list.ts); a dataset opens in the
 * main area (detail.ts, through the plugin's `IDatasetOpener`); approved requests say
 * when the server needs a restart to mount them (access.ts).
 */
import { Widget } from '@lumino/widgets';
import { requestAPI } from '../request';
import { accessHint } from './access';
import { datasetsIcon, el } from './dom';
import { grantedItem, PagedList, requestableItem } from './list';
import { requestAccess } from './requests';
import { IDatasetSummary, IDatasetsNavigator, IRequestable } from './types';

const SEARCH_DELAY = 300; // ms after the last keystroke before the search is sent
const NEAR_END = 200; // px from the end of the list at which the next page loads

/** What the panel cannot do itself: open views in the main area, insert into a notebook. */
export type IDatasetOpener = Pick<IDatasetsNavigator, 'openDataset' | 'openRequestable' | 'insertIntoNotebook'>;

export class DatasetsPanel extends Widget implements IDatasetsNavigator {
  private _search: HTMLInputElement;
  private _tag: HTMLInputElement;
  private _body: HTMLDivElement;
  private _lists: PagedList<any>[] = [];
  private _timer = 0;
  private _generation = 0;

  constructor(private _opener: IDatasetOpener) {
    super();
    this.id = 'aistudio-datasets';
    this.addClass('aistudio-Datasets');
    this.title.icon = datasetsIcon;
    this.title.caption = 'Datasets';
    const header = el('div', { class: 'aistudio-Datasets-header' });
    header.appendChild(el('h2', {}, 'Datasets'));
    this._search = el('input', { type: 'search', placeholder: 'Search', 'aria-label': 'Search datasets' });
    this._tag = el('input', { type: 'search', placeholder: 'Tag', 'aria-label': 'Filter by tag' });
    const refresh = el('button', { class: 'jp-Button', title: 'Refresh' }, 'Refresh');
    refresh.onclick = () => void this.showList();
    for (const input of [this._search, this._tag]) {
      input.oninput = () => this.searchSoon();
    }
    header.append(this._search, this._tag, refresh);
    this._body = el('div', { class: 'aistudio-Datasets-body' });
    this._body.onscroll = () => this.loadNearEnd();
    this.node.append(header, this._body);
  }

  protected onAfterAttach(): void {
    void this.showList();
  }

  private query(): Record<string, string> {
    const q: Record<string, string> = {};
    if (this._search.value.trim()) {
      q.q = this._search.value.trim();
    }
    if (this._tag.value.trim()) {
      q.tag = this._tag.value.trim();
    }
    return q;
  }

  private searchSoon(): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this.showList(), SEARCH_DELAY);
  }

  /** The next page of the first list not yet complete, when the member scrolled near the end. */
  private loadNearEnd(): void {
    const body = this._body;
    if (body.scrollHeight - body.scrollTop - body.clientHeight > NEAR_END) {
      return;
    }
    const next = this._lists.find(list => !list.exhausted);
    if (next) {
      void next.loadMore().catch(error => this.fail(error));
    }
  }

  private fail(error: unknown): void {
    this._body.replaceChildren(el('p', { class: 'aistudio-Datasets-error' }, String((error as Error).message || error)));
  }

  async showList(): Promise<void> {
    const generation = ++this._generation; // a newer search replaces this one
    const query = this.query();
    const mine = new PagedList<IDatasetSummary>('datasets', query, d => grantedItem(d, this), 'No dataset is granted to you yet.');
    const other = new PagedList<IRequestable>('requestable', query, d => requestableItem(d, this), 'Nothing else to request.');
    this._lists = [mine, other];
    const requests = el('div', { class: 'aistudio-Datasets-requests' });
    try {
      await Promise.all([mine.loadMore(), other.loadMore(), this.showRequests(requests)]);
    } catch (error) {
      if (generation === this._generation) {
        this.fail(error);
      }
      return;
    }
    if (generation === this._generation) {
      this._body.replaceChildren(requests, el('h3', {}, 'Yours'), mine.node, el('h3', {}, 'You may request'), other.node);
    }
  }

  /** The member's requests; an approved one says whether this server needs a restart to read it. */
  private async showRequests(into: HTMLElement): Promise<void> {
    const { requests } = await requestAPI<{ requests: any[] }>('requests');
    if (!requests.length) {
      return;
    }
    const list = el('ul', { class: 'aistudio-Datasets-list' });
    for (const r of requests) {
      const item = el('li', { 'data-request': r.dataset }, `${r.dataset}: ${r.status}${r.comment ? ` (${r.comment})` : ''}`);
      if (r.status === 'approved' && (await this.granted(r.dataset))) {
        const hint = await accessHint(r.dataset).catch(() => null);
        if (hint) {
          item.appendChild(hint);
        }
      }
      list.appendChild(item);
    }
    into.append(el('h3', {}, 'Your requests'), list);
  }

  /** Whether the catalogue grants the dataset now (an approval's grant may have ended since). */
  private granted(name: string): Promise<boolean> {
    return requestAPI(`datasets/${name}`).then(() => true, () => false);
  }

  openDataset(name: string): void {
    this._opener.openDataset(name);
  }

  openRequestable(entry: IRequestable): void {
    this._opener.openRequestable(entry);
  }

  insertIntoNotebook(code: string): Promise<void> {
    return this._opener.insertIntoNotebook(code);
  }

  async requestAccess(name: string): Promise<void> {
    await requestAccess(name, this);
  }
}
