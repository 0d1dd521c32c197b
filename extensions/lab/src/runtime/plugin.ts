/**
 * AI Studio: this server's run time inside JupyterLab.
 *
 * When JupyterLab has restored its layout, and then every 30 seconds, asks the hub for the
 * server's run time (model.ts), counting down locally every second in between; shows the
 * time left in the status bar (statusbar.ts, when JupyterLab has one) and a warning at each
 * of the hub's warning points, with the extension the policy allows (notices.ts).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';
import { RuntimeModel } from './model';
import { RuntimeNotices } from './notices';
import { RuntimeStatus, STATUS_ID } from './statusbar';

const POLL_MS = 30_000;
const TICK_MS = 1_000;

export const runtimePlugin: JupyterFrontEndPlugin<void> = {
  id: '@aistudio/lab:runtime',
  description: "This server's time left in the status bar, warnings before its run-time limit and its extension.",
  autoStart: true,
  optional: [IStatusBar],
  activate: (app: JupyterFrontEnd, statusBar: IStatusBar | null) => {
    const model = new RuntimeModel();
    new RuntimeNotices(model);
    if (statusBar) {
      statusBar.registerStatusItem(STATUS_ID, {
        item: new RuntimeStatus(model),
        align: 'left',
        rank: 1000,
        isActive: () => model.limited,
        activeStateChanged: model.changed
      });
    }
    let failed = false;
    const refresh = () =>
      model
        .refresh()
        .then(() => (failed = false))
        .catch(error => {
          if (!failed) {
            console.warn('aistudio runtime:', error); // once, not every 30 s (e.g. outside the hub)
          }
          failed = true;
        });
    void app.restored.then(() => {
      void refresh();
      window.setInterval(() => void refresh(), POLL_MS);
      window.setInterval(() => model.tick(), TICK_MS);
    });
  }
};
