/**
 * AI Studio: notices of GPU reservations inside JupyterLab.
 *
 * When JupyterLab has restored its layout, and then every 30 seconds (a reservation holds
 * for minutes only), checks the member's queue entries (notices.ts).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { checkQueue } from './notices';

const POLL_MS = 30_000;

export const queuePlugin: JupyterFrontEndPlugin<void> = {
  id: '@aistudio/lab:queue',
  description: 'Notifications when GPUs the member queued for are reserved for them.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    const check = () => checkQueue().catch(error => console.warn('aistudio queue:', error));
    void app.restored.then(() => {
      void check();
      window.setInterval(() => void check(), POLL_MS);
    });
  }
};
