/**
 * The main-area view of one dataset: its facts, files, schema, a scrollable grid of the
 * first rows and the load snippets (Copy, Insert into notebook); for a dataset the member
 * may request, its metadata only (never data) and the request button.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import { requestAPI } from '../request';
import { accessHint } from './access';
import { el, size } from './dom';
import { IColumn, IDatasetsNavigator, IFile, IRequestable } from './types';

const COPIED_FOR = 2000; // ms the "Copied" feedback stays

function facts(entries: [string, string | null | undefined][]): HTMLElement {
  const list = el('dl', { class: 'aistudio-DatasetView-facts' });
  for (const [label, value] of entries) {
    if (value) {
      list.append(el('dt', {}, label), el('dd', {}, value));
    }
  }
  return list;
}

function heading(title: string, description: string): HTMLElement[] {
  return [el('h2', {}, title), el('p', { class: 'aistudio-DatasetView-description' }, description)];
}

function schemaTable(columns: IColumn[]): HTMLElement {
  const table = el('table', { class: 'aistudio-DatasetView-table aistudio-DatasetView-schema' });
  table.appendChild(el('tr')).append(el('th', {}, 'Column'), el('th', {}, 'Type'));
  for (const c of columns) {
    table.appendChild(el('tr')).append(el('td', {}, c.name), el('td', {}, c.type));
  }
  return table;
}

/** The first rows as a grid: scrolls both ways inside the view, its header row stays in sight. */
function previewGrid(columns: IColumn[], rows: unknown[][]): HTMLElement {
  const table = el('table', { class: 'aistudio-DatasetView-table', role: 'grid' });
  table.appendChild(el('thead')).appendChild(el('tr')).append(...columns.map(c => el('th', { title: c.type }, c.name)));
  const body = table.appendChild(el('tbody'));
  for (const row of rows) {
    body.appendChild(el('tr')).append(...row.map(v => el('td', {}, v === null ? '' : String(v))));
  }
  const scroll = el('div', { class: 'aistudio-DatasetView-grid' });
  scroll.appendChild(table);
  return scroll;
}

function snippetBlock(lib: string, code: string, nav: IDatasetsNavigator): HTMLElement {
  const block = el('div', { class: 'aistudio-DatasetView-snippet', 'data-library': lib });
  const copy = el('button', { class: 'jp-Button' }, 'Copy');
  copy.onclick = () => {
    Clipboard.copyToSystem(code);
    copy.textContent = 'Copied';
    window.setTimeout(() => (copy.textContent = 'Copy'), COPIED_FOR);
  };
  const insert = el('button', { class: 'jp-Button jp-mod-accept' }, 'Insert into notebook');
  insert.onclick = () => void nav.insertIntoNotebook(code);
  const actions = el('div', { class: 'aistudio-DatasetView-actions' });
  actions.append(copy, insert);
  block.append(el('h4', {}, lib), el('pre', {}, code), actions);
  return block;
}

async function fileSection(name: string, file: IFile, nav: IDatasetsNavigator): Promise<HTMLElement[]> {
  const [preview, snippet] = await Promise.all([
    requestAPI<any>(`datasets/${name}/preview`, {}, { file: file.path, rows: '100' }),
    requestAPI<any>(`datasets/${name}/snippet`, {}, { file: file.path })
  ]);
  const parts: HTMLElement[] = [];
  if (file.columns) {
    parts.push(el('h3', {}, 'Schema'), schemaTable(file.columns));
  }
  parts.push(el('h3', {}, `First ${preview.rows.length} rows${preview.truncated ? ' (cut)' : ''}`),
    previewGrid(preview.columns, preview.rows), el('h3', {}, 'Load it'));
  for (const lib of ['pandas', 'pyarrow']) {
    if (snippet[lib]) {
      parts.push(snippetBlock(lib, snippet[lib], nav));
    }
  }
  return parts;
}

/** The view of a granted dataset, filled into `widget` (again when the member picks another file). */
export async function showDataset(widget: Widget, name: string, nav: IDatasetsNavigator, file?: string): Promise<void> {
  const [meta, schema, hint] = await Promise.all([
    requestAPI<any>(`datasets/${name}`),
    requestAPI<{ files: IFile[] }>(`datasets/${name}/schema`),
    accessHint(name).catch(() => null)
  ]);
  widget.title.label = meta.title || name;
  const chosen = schema.files.find(f => f.path === file) || schema.files[0];
  const parts: HTMLElement[] = heading(meta.title || meta.name, meta.description);
  if (hint) {
    parts.push(hint);
  }
  parts.push(facts([
    ['Name', meta.name],
    ['Mounted at', meta.mount_path],
    ['Steward', meta.steward],
    ['Version', meta.version],
    ['Licence', meta.licence],
    ['Terms', meta.terms],
    ['De-identification', [meta.deidentification.method, meta.deidentification.date].filter(Boolean).join(', ')],
    ['Your access until', meta.access_expires_at ? new Date(meta.access_expires_at * 1000).toLocaleString() : 'no end'],
    ['Tags', (meta.tags || []).join(', ')]
  ]));
  if (chosen) {
    const files = el('select', { 'aria-label': 'File' });
    for (const f of schema.files) {
      const option = el('option', { value: f.path }, `${f.path} (${f.rows ?? '?'} rows, ${size(f.size_bytes)})`);
      option.selected = f === chosen;
      files.appendChild(option);
    }
    files.onchange = () => void showDataset(widget, name, nav, files.value);
    parts.push(el('h3', {}, 'Files'), files, ...(await fileSection(name, chosen, nav)));
  }
  widget.node.replaceChildren(...parts);
}

/** The view of a dataset the member may request: what the catalogue says of it, never its data. */
export function showRequestable(widget: Widget, d: IRequestable, nav: IDatasetsNavigator): void {
  widget.title.label = d.title || d.name;
  const parts = heading(d.title || d.name, d.description);
  parts.push(el('p', { class: 'aistudio-Datasets-status' }, 'You do not have access to this dataset yet: ' +
    'this is what the catalogue says of it; its data shows here once a steward grants your request.'));
  parts.push(facts([
    ['Name', d.name],
    ['Format', d.format],
    ['Rows', d.rows === null ? '' : d.rows.toLocaleString()],
    ['Size', size(d.size_bytes)],
    ['Steward', d.steward],
    ['Version', d.version],
    ['Licence', d.licence],
    ['Terms', d.terms],
    ['De-identification', [d.deidentification?.method, d.deidentification?.date].filter(Boolean).join(', ')],
    ['Tags', d.tags.join(', ')],
    ['Your request', d.request ? `${d.request.status}${d.request.comment ? `: ${d.request.comment}` : ''}` : '']
  ]));
  if (!d.request || d.request.status !== 'pending') {
    const ask = el('button', { class: 'jp-Button jp-mod-accept' }, 'Request access');
    ask.onclick = () => void nav.requestAccess(d.name);
    parts.push(ask);
  }
  widget.node.replaceChildren(...parts);
}
