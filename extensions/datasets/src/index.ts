/**
 * AI Studio: the "Datasets" panel in JupyterLab's left sidebar.
 *
 * A thin client: everything comes from this server's /aistudio-datasets/api/ handlers,
 * which pass requests on to the hub's datasets catalogue; the hub decides what the
 * member may see. Lists the member's datasets (search, tag), shows metadata, schema,
 * the first rows and a load snippet, and lets the member request other datasets.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin,
  ILayoutRestorer
} from '@jupyterlab/application';
import { Clipboard, InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import { announcementsPlugin } from './announcements';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
  '<g class="jp-icon3" fill="#616161"><ellipse cx="12" cy="5" rx="8" ry="3"/>' +
  '<path d="M4 7v4c0 1.7 3.6 3 8 3s8-1.3 8-3V7c0 1.7-3.6 3-8 3S4 8.7 4 7z"/>' +
  '<path d="M4 13v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/></g></svg>';

export const datasetsIcon = new LabIcon({ name: 'aistudio:datasets', svgstr: ICON_SVG });

interface IDatasetSummary {
  name: string;
  title: string;
  description: string;
  tags: string[];
  format: string;
  rows: number | null;
  size_bytes: number | null;
  version: string;
  steward: string;
  request?: { id: number; status: string; comment: string | null } | null;
}

interface IColumn {
  name: string;
  type: string;
}

interface IFile {
  path: string;
  format: string;
  rows: number | null;
  size_bytes: number | null;
  columns?: IColumn[];
}

/** Ask this server's datasets handlers; throws with the catalogue's message. */
export async function requestAPI<T>(path: string, init: RequestInit = {}, query: Record<string, string> = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams(query).toString();
  const url = URLExt.join(settings.baseUrl, 'aistudio-datasets', 'api', path) + (params ? `?${params}` : '');
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new Error(data.message || `${response.status} ${response.statusText}`);
  }
  return data as T;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, value);
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function size(bytes: number | null): string {
  if (bytes === null || bytes === undefined) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** The panel: a list view and a detail view of one dataset. */
export class DatasetsPanel extends Widget {
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

  async showList(): Promise<void> {
    this._body.replaceChildren(el('p', {}, 'Loading…'));
    try {
      const [mine, other, requests] = await Promise.all([
        requestAPI<{ datasets: IDatasetSummary[]; mount_root: string }>('datasets', {}, this.query()),
        requestAPI<{ datasets: IDatasetSummary[] }>('requestable', {}, this.query()),
        requestAPI<{ requests: any[] }>('requests')
      ]);
      const body: HTMLElement[] = [el('h3', {}, 'Yours')];
      if (!mine.datasets.length) {
        body.push(el('p', { class: 'aistudio-Datasets-empty' }, 'No dataset is granted to you yet.'));
      }
      const list = el('ul', { class: 'aistudio-Datasets-list' });
      for (const d of mine.datasets) {
        const item = el('li', { class: 'aistudio-Datasets-item', 'data-dataset': d.name });
        const link = el('a', { href: '#' }, d.title || d.name);
        link.onclick = (event: MouseEvent) => {
          event.preventDefault();
          void this.showDataset(d.name);
        };
        item.append(link, el('div', { class: 'aistudio-Datasets-meta' },
          `${d.name} · ${d.format} · ${d.rows ?? '?'} rows · ${size(d.size_bytes)}` +
            (d.tags.length ? ` · ${d.tags.join(', ')}` : '')));
        list.appendChild(item);
      }
      body.push(list, el('h3', {}, 'You may request'));
      const others = el('ul', { class: 'aistudio-Datasets-list' });
      for (const d of other.datasets) {
        const item = el('li', { class: 'aistudio-Datasets-item' });
        item.append(el('strong', {}, d.title || d.name), el('div', { class: 'aistudio-Datasets-meta' },
          `${d.name} · ${d.description}`));
        if (d.request && d.request.status === 'pending') {
          item.appendChild(el('div', { class: 'aistudio-Datasets-status' }, 'Request pending'));
        } else {
          if (d.request && d.request.status === 'denied') {
            item.appendChild(el('div', { class: 'aistudio-Datasets-status' },
              `Denied: ${d.request.comment ?? ''}`));
          }
          const ask = el('button', { class: 'jp-Button' }, 'Request access');
          ask.onclick = () => void this.requestAccess(d.name);
          item.appendChild(ask);
        }
        others.appendChild(item);
      }
      if (!other.datasets.length) {
        body.push(el('p', { class: 'aistudio-Datasets-empty' }, 'Nothing else to request.'));
      }
      body.push(others);
      if (requests.requests.length) {
        body.push(el('h3', {}, 'Your requests'));
        const reqs = el('ul', { class: 'aistudio-Datasets-list' });
        for (const r of requests.requests) {
          reqs.appendChild(el('li', {}, `${r.dataset}: ${r.status}${r.comment ? ` (${r.comment})` : ''}`));
        }
        body.push(reqs);
      }
      this._body.replaceChildren(...body);
    } catch (error) {
      this.fail(error);
    }
  }

  async requestAccess(name: string): Promise<void> {
    const answer = await InputDialog.getText({
      title: `Request access to ${name}`,
      label: 'Purpose (what you will do with it)',
      placeholder: 'e.g. Validating a sepsis model for my thesis'
    });
    if (!answer.button.accept || !answer.value) {
      return;
    }
    try {
      await requestAPI('requests', {
        method: 'POST',
        body: JSON.stringify({ dataset: name, purpose: answer.value })
      });
      await this.showList();
    } catch (error) {
      await showErrorMessage('Request not sent', String((error as Error).message || error));
    }
  }

  async showDataset(name: string, file?: string): Promise<void> {
    this._body.replaceChildren(el('p', {}, 'Loading…'));
    try {
      const meta = await requestAPI<any>(`datasets/${name}`);
      const schema = await requestAPI<{ files: IFile[] }>(`datasets/${name}/schema`);
      const chosen = file || (schema.files[0] && schema.files[0].path);
      const back = el('button', { class: 'jp-Button' }, '← All datasets');
      back.onclick = () => void this.showList();
      const parts: HTMLElement[] = [back, el('h3', {}, meta.title || meta.name), el('p', {}, meta.description)];
      const facts = el('dl', { class: 'aistudio-Datasets-facts' });
      const add = (label: string, value: string) => {
        if (value) {
          facts.append(el('dt', {}, label), el('dd', {}, value));
        }
      };
      add('Mounted at', meta.mount_path);
      add('Steward', meta.steward);
      add('Version', meta.version);
      add('Licence', meta.licence);
      add('Terms', meta.terms);
      add('De-identification', [meta.deidentification.method, meta.deidentification.date].filter(Boolean).join(', '));
      add('Your access until', meta.access_expires_at ? new Date(meta.access_expires_at * 1000).toLocaleString() : 'no end');
      add('Tags', (meta.tags || []).join(', '));
      parts.push(facts);
      const files = el('select', { 'aria-label': 'File' });
      for (const f of schema.files) {
        const option = el('option', { value: f.path }, `${f.path} (${f.rows ?? '?'} rows, ${size(f.size_bytes)})`);
        if (f.path === chosen) {
          option.setAttribute('selected', 'selected');
        }
        files.appendChild(option);
      }
      files.onchange = () => void this.showDataset(name, files.value);
      parts.push(el('h4', {}, 'Files'), files);
      const current = schema.files.find(f => f.path === chosen);
      if (current && current.columns) {
        const cols = el('table', { class: 'aistudio-Datasets-table' });
        cols.appendChild(el('tr')).append(el('th', {}, 'column'), el('th', {}, 'type'));
        for (const c of current.columns) {
          cols.appendChild(el('tr')).append(el('td', {}, c.name), el('td', {}, c.type));
        }
        parts.push(el('h4', {}, 'Schema'), cols);
      }
      if (chosen) {
        const [preview, snippet] = await Promise.all([
          requestAPI<any>(`datasets/${name}/preview`, {}, { file: chosen, rows: '20' }),
          requestAPI<any>(`datasets/${name}/snippet`, {}, { file: chosen })
        ]);
        const table = el('table', { class: 'aistudio-Datasets-table aistudio-Datasets-preview' });
        table.appendChild(el('tr')).append(...preview.columns.map((c: IColumn) => el('th', {}, c.name)));
        for (const row of preview.rows) {
          table.appendChild(el('tr')).append(...row.map((v: unknown) => el('td', {}, v === null ? '' : String(v))));
        }
        const scroll = el('div', { class: 'aistudio-Datasets-scroll' });
        scroll.appendChild(table);
        parts.push(el('h4', {}, `First ${preview.rows.length} rows${preview.truncated ? ' (cut)' : ''}`), scroll);
        for (const lib of ['pandas', 'pyarrow']) {
          const code = el('pre', { class: 'aistudio-Datasets-snippet' }, snippet[lib]);
          const copy = el('button', { class: 'jp-Button' }, `Copy ${lib} code`);
          copy.onclick = () => Clipboard.copyToSystem(snippet[lib]);
          parts.push(code, copy);
        }
      }
      this._body.replaceChildren(...parts);
    } catch (error) {
      this.fail(error);
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@aistudio/datasets:plugin',
  description: 'The Datasets panel: datasets granted to you, their schema and first rows, access requests.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const panel = new DatasetsPanel();
    app.shell.add(panel, 'left', { rank: 450 });
    if (restorer) {
      restorer.add(panel, 'aistudio-datasets');
    }
    app.commands.addCommand('aistudio-datasets:open', {
      label: 'Open the Datasets panel',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

export default [plugin, announcementsPlugin];
