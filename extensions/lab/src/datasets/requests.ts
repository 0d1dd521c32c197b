/** The access request: asks the member's purpose, then sends the request to the catalogue. */
import { InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { requestAPI } from '../request';
import { IDatasetsNavigator } from './types';

export async function requestAccess(name: string, nav: IDatasetsNavigator): Promise<void> {
  const answer = await InputDialog.getText({
    title: `Request access to ${name}`,
    label: 'Purpose (what you will do with it)',
    placeholder: 'e.g. Validating a sepsis model for my thesis'
  });
  if (!answer.button.accept || !answer.value) {
    return;
  }
  try {
    await requestAPI('requests', {
      method: 'POST',
      body: JSON.stringify({ dataset: name, purpose: answer.value })
    });
    await nav.showList();
  } catch (error) {
    await showErrorMessage('Request not sent', String((error as Error).message || error));
  }
}
