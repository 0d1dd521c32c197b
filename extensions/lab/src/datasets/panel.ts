/**
 * AI Studio: the "Datasets" panel in JupyterLab's left sidebar.
 *
 * A thin client: everything comes from this server's /aistudio-datasets/api/ handlers,
 * which pass requests on to the hub's datasets catalogue; the hub decides what the
 * member may see. Lists the member's datasets (search, tag: list.ts), shows metadata,
 * schema, the first rows and a load snippet (detail.ts), and lets the member request
 * other datasets (requests.ts).
 */
import { Widget } from '@lumino/widgets';
import { detailView } from './detail';
import { datasetsIcon, el } from './dom';
import { listView } from './list';
import { requestAccess } from './requests';
import { IDatasetsNavigator } from './types';

/** The panel: a header (search, tag, refresh) over a list view or a detail view of one dataset. */
export class DatasetsPanel extends Widget implements IDatasetsNavigator {
  private _search: HTMLInputElement;
  private _tag: HTMLInputElement;
  private _body: HTMLDivElement;

  constructor() {
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
    this._search.onchange = () => void this.showList();
    this._tag.onchange = () => void this.showList();
    header.append(this._search, this._tag, refresh);
    this._body = el('div', { class: 'aistudio-Datasets-body' });
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

  private fail(error: unknown): void {
    this._body.replaceChildren(el('p', { class: 'aistudio-Datasets-error' }, String((error as Error).message || error)));
  }

  /** Shows a view: "Loading…" until it is built, its message when it fails. */
  private async render(view: () => Promise<HTMLElement[]>): Promise<void> {
    this._body.replaceChildren(el('p', {}, 'Loading…'));
    try {
      this._body.replaceChildren(...(await view()));
    } catch (error) {
      this.fail(error);
    }
  }

  async showList(): Promise<void> {
    await this.render(() => listView(this.query(), this));
  }

  async showDataset(name: string, file?: string): Promise<void> {
    await this.render(() => detailView(name, file, this));
  }

  async requestAccess(name: string): Promise<void> {
    await requestAccess(name, this);
  }
}
