/** The Datasets plugin: the panel in the left sidebar, restored with the layout, and its command. */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { DatasetsPanel } from './panel';

export const datasetsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@aistudio/lab:datasets',
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
