/**
 * AI Studio: notices of new announcements inside JupyterLab.
 *
 * When JupyterLab has restored its layout, and then every minute, checks the current
 * announcements (notices.ts).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { checkAnnouncements } from './notices';

const POLL_MS = 60_000;

export const announcementsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@aistudio/lab:announcements',
  description: 'Notifications of new announcements (seminars, incubation calls, news) from the hub.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    const check = () =>
      checkAnnouncements().catch(error => console.warn('aistudio announcements:', error));
    void app.restored.then(() => {
      void check();
      window.setInterval(() => void check(), POLL_MS);
    });
  }
};
