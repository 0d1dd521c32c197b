/**
 * The Datasets plugin: the panel in the left sidebar (restored with the layout), one
 * main-area view per opened dataset, "Insert into notebook", and the panel's command.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget, showErrorMessage } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';
import { showDataset, showRequestable } from './detail';
import { datasetsIcon, el } from './dom';
import { insertIntoNotebook } from './notebook';
import { IDatasetOpener, DatasetsPanel } from './panel';
import { IRequestable } from './types';

/** The main-area view of `name`: activated when open, otherwise made and filled by `fill`. */
function openView(app: JupyterFrontEnd, id: string, fill: (content: Widget) => Promise<void> | void): void {
  const open = Array.from(app.shell.widgets('main')).find(w => w.id === id);
  if (open) {
    app.shell.activateById(id);
    return;
  }
  const content = new Widget();
  content.addClass('aistudio-DatasetView');
  content.title.icon = datasetsIcon; // the main-area widget shows its content's title
  content.title.closable = true;
  content.node.appendChild(el('p', {}, 'Loading…'));
  const view = new MainAreaWidget({ content });
  view.id = id;
  view.title.icon = datasetsIcon;
  view.title.closable = true;
  app.shell.add(view, 'main');
  app.shell.activateById(id);
  Promise.resolve(fill(content)).catch(error =>
    content.node.replaceChildren(el('p', { class: 'aistudio-Datasets-error' }, String((error as Error).message || error))));
}

export const datasetsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@aistudio/lab:datasets',
  description: 'The Datasets panel and views: datasets granted to you, their schema and first rows, access requests.',
  autoStart: true,
  optional: [ILayoutRestorer, INotebookTracker],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, tracker: INotebookTracker | null) => {
    const opener: IDatasetOpener = {
      openDataset: (name: string) => openView(app, `aistudio-dataset-${name}`, content => {
        content.title.label = name;
        return showDataset(content, name, panel);
      }),
      openRequestable: (entry: IRequestable) => openView(app, `aistudio-requestable-${entry.name}`,
        content => showRequestable(content, entry, panel)),
      insertIntoNotebook: (code: string) => insertIntoNotebook(app, tracker, code).catch(error =>
        void showErrorMessage('Not inserted', String((error as Error).message || error)))
    };
    const panel = new DatasetsPanel(opener);
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
