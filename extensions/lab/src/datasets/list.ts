/** The list view: the datasets granted to the member, those they may request, their requests. */
import { requestAPI } from '../request';
import { el, size } from './dom';
import { IDatasetSummary, IDatasetsNavigator } from './types';

export async function listView(query: Record<string, string>, nav: IDatasetsNavigator): Promise<HTMLElement[]> {
  const [mine, other, requests] = await Promise.all([
    requestAPI<{ datasets: IDatasetSummary[]; mount_root: string }>('datasets', {}, query),
    requestAPI<{ datasets: IDatasetSummary[] }>('requestable', {}, query),
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
      void nav.showDataset(d.name);
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
      ask.onclick = () => void nav.requestAccess(d.name);
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
  return body;
}
