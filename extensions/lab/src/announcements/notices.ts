/**
 * The announcements notices: asks this server's /aistudio-datasets/api/announcements
 * (which asks the hub's announcements service with the server's token) for the current
 * items, and shows a JupyterLab notification for each one the member has not seen yet
 * (ids and update times kept in localStorage). Titles are shown as plain text only.
 */
import { Notification } from '@jupyterlab/apputils';
import { requestAPI } from '../request';

const SEEN_KEY = 'aistudio-announcements:seen';
const KINDS: Record<string, string> = { seminar: 'Seminar', call: 'Incubation call', news: 'News' };

interface IItem {
  id: string;
  kind: string;
  title: string;
  updated_at: string;
}

function loadSeen(): Record<string, string> {
  try {
    const seen = JSON.parse(window.localStorage.getItem(SEEN_KEY) || '{}');
    return seen && typeof seen === 'object' ? seen : {};
  } catch {
    return {};
  }
}

/** One line of plain text: no markup is ever interpreted (the toast renders text). */
function plain(value: unknown, max = 200): string {
  const text = String(value ?? '').replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export async function checkAnnouncements(): Promise<void> {
  const data = await requestAPI<{ version: number; items: IItem[]; page: string }>('announcements');
  const seen = loadSeen();
  const page = new URL(data.page || '/services/announcements/', window.location.origin).href;
  const current: Record<string, string> = {};
  for (const item of data.items) {
    current[item.id] = item.updated_at;
    if (seen[item.id] === item.updated_at) {
      continue;
    }
    Notification.info(`${KINDS[item.kind] || 'Announcement'}: ${plain(item.title)}`, {
      autoClose: false,
      actions: [
        {
          label: 'Open announcements',
          callback: () => {
            window.open(page, '_blank', 'noopener');
          }
        }
      ]
    });
  }
  window.localStorage.setItem(SEEN_KEY, JSON.stringify(current));
}
