/**
 * The announcements notices: asks this server's /aistudio-datasets/api/announcements
 * (which asks the hub's announcements service with the server's token) for the current
 * items, and shows a JupyterLab notification for each one the member has not seen yet
 * (ids and update times kept in localStorage). Titles are shown as plain text only.
 *
 * The same answer carries the decisions on the member's support requests and field-test
 * scenario applications (`updates`): each new state is shown once, with a link to it.
 */
import { Notification } from '@jupyterlab/apputils';
import { requestAPI } from '../request';

const SEEN_KEY = 'aistudio-announcements:seen';
const UPDATES_KEY = 'aistudio-announcements:updates-seen';
const UPDATE_KINDS: Record<string, string> = { support: 'Support request', scenario: 'Field-test application' };
const KINDS: Record<string, string> = { seminar: 'Seminar', call: 'Incubation call', news: 'News' };

interface IItem {
  id: string;
  kind: string;
  title: string;
  updated_at: string;
}

interface IUpdate {
  id: string;
  kind: string;
  title: string;
  status_label: string;
  updated_at: string;
  url: string;
}

function loadSeen(key = SEEN_KEY): Record<string, string> {
  try {
    const seen = JSON.parse(window.localStorage.getItem(key) || '{}');
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
  const data = await requestAPI<{ version: number; items: IItem[]; page: string; updates?: IUpdate[] }>(
    'announcements'
  );
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
  showUpdates(data.updates || []);
}

/** A notice for each decision on the member's requests and applications not shown before. */
function showUpdates(updates: IUpdate[]): void {
  const seen = loadSeen(UPDATES_KEY);
  const current: Record<string, string> = {};
  for (const update of updates) {
    const key = `${update.kind}:${update.id}`;
    current[key] = update.status_label; // a comment alone changes no state: no new notice
    if (seen[key] === update.status_label) {
      continue;
    }
    const link = new URL(update.url || '/services/announcements/', window.location.origin).href;
    Notification.info(
      `${UPDATE_KINDS[update.kind] || 'Update'}: ${plain(update.title)} is now ${plain(update.status_label, 60)}`,
      {
        autoClose: false,
        actions: [
          {
            label: 'Open',
            callback: () => {
              window.open(link, '_blank', 'noopener');
            }
          }
        ]
      }
    );
  }
  window.localStorage.setItem(UPDATES_KEY, JSON.stringify(current));
}
