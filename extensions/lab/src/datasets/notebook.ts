/** "Insert into notebook": the snippet as a new code cell below the active cell of the current notebook. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

/** The current notebook, or a new one (in the file browser's folder) when none is open. */
async function targetNotebook(app: JupyterFrontEnd, tracker: INotebookTracker | null): Promise<NotebookPanel> {
  if (tracker && tracker.currentWidget) {
    return tracker.currentWidget;
  }
  return (await app.commands.execute('notebook:create-new', { kernelName: 'python3' })) as NotebookPanel;
}

export async function insertIntoNotebook(app: JupyterFrontEnd, tracker: INotebookTracker | null, code: string): Promise<void> {
  const panel = await targetNotebook(app, tracker);
  await panel.context.ready;
  const notebook = panel.content;
  const active = notebook.activeCell;
  // a new notebook's empty first cell takes the snippet instead of staying empty above it
  if (!(active && active.model.type === 'code' && active.model.sharedModel.getSource() === '')) {
    NotebookActions.insertBelow(notebook);
    NotebookActions.changeCellType(notebook, 'code');
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
  app.shell.activateById(panel.id);
}
