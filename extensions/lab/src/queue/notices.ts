/**
 * The GPU queue notices: asks this server's /aistudio-datasets/api/queue (which asks the
 * hub's queue API with the server's token) for the member's entries, and shows a
 * JupyterLab notification once per reservation (entry id and reservation end kept in
 * localStorage, so a reload or a second tab does not show it again). A reservation lapses
 * when the member does not start in time, so the notice says until when it holds.
 */
import { Notification } from '@jupyterlab/apputils';
import { requestAPI } from '../request';

const SEEN_KEY = 'aistudio-queue:reservations';

interface IEntry {
  id: number;
  profile: string;
  gpus: number;
  gpu_type: string | null;
  state: 'waiting' | 'reserved';
  place: number | null;
  estimate: string;
  reserved_until: number | null;
  auto_start: boolean;
}

function loadSeen(): string[] {
  try {
    const seen = JSON.parse(window.localStorage.getItem(SEEN_KEY) || '[]');
    return Array.isArray(seen) ? seen : [];
  } catch {
    return [];
  }
}

/** HH:MM in the browser's time zone (the member's clock, as the hub's queue page shows it). */
function hhmm(epochSeconds: number): string {
  const date = new Date(epochSeconds * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The notice's one line of plain text (the toast renders text, never markup). */
function reservationMessage(entry: IEntry): string {
  const kind = String(entry.gpu_type || 'GPU').toUpperCase();
  const until = entry.reserved_until ? ` until ${hhmm(entry.reserved_until)}` : '';
  const action = entry.auto_start ? 'your server is being started now' : 'start it before then';
  return `${entry.gpus}× ${kind} reserved for you${until} — ${action}`;
}

export async function checkQueue(): Promise<void> {
  const data = await requestAPI<{ entries: IEntry[]; page: string }>('queue');
  const seen = loadSeen();
  const page = new URL(data.page || '/hub/queue', window.location.origin).href;
  const current: string[] = [];
  for (const entry of data.entries) {
    if (entry.state !== 'reserved') {
      continue;
    }
    const key = `${entry.id}:${entry.reserved_until ?? ''}`;
    current.push(key);
    if (seen.includes(key)) {
      continue;
    }
    Notification.success(reservationMessage(entry), {
      autoClose: false,
      actions: [
        {
          label: 'Open the queue',
          callback: () => {
            window.open(page, '_blank', 'noopener');
          }
        }
      ]
    });
  }
  // only the reservations that still hold are kept: the list cannot grow without end
  window.localStorage.setItem(SEEN_KEY, JSON.stringify(current));
}
