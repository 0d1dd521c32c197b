/** The detail view of one dataset: its facts, files, schema, first rows and load snippets. */
import { Clipboard } from '@jupyterlab/apputils';
import { requestAPI } from '../request';
import { el, size } from './dom';
import { IColumn, IDatasetsNavigator, IFile } from './types';

export async function detailView(name: string, file: string | undefined, nav: IDatasetsNavigator): Promise<HTMLElement[]> {
  const meta = await requestAPI<any>(`datasets/${name}`);
  const schema = await requestAPI<{ files: IFile[] }>(`datasets/${name}/schema`);
  const chosen = file || (schema.files[0] && schema.files[0].path);
  const back = el('button', { class: 'jp-Button' }, '← All datasets');
  back.onclick = () => void nav.showList();
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
  files.onchange = () => void nav.showDataset(name, files.value);
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
  return parts;
}
