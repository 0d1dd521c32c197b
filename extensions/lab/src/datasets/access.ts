/**
 * Whether a granted dataset can be read in this server now, and the way to a restart when
 * it cannot: a grant made after the server started is mounted only when it starts again.
 * The hint is shown exactly when this server cannot read the dataset.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { requestAPI } from '../request';
import { el } from './dom';
import { IAccess } from './types';

/** Stops this server through the hub, then takes the member to the hub's home page to start it again. */
export async function restartServer(button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  button.textContent = 'Stopping your server…';
  try {
    const answer = await requestAPI<{ next: string }>('restart', { method: 'POST' });
    window.setTimeout(() => window.location.assign(answer.next), 1500);
  } catch (error) {
    button.disabled = false;
    button.textContent = 'Restart your server';
    await showErrorMessage('Your server was not restarted', String((error as Error).message || error));
  }
}

/** The hint for one dataset, or null when this server can read it. */
export async function accessHint(name: string): Promise<HTMLElement | null> {
  const access = await requestAPI<IAccess>(`access/${name}`);
  if (access.readable) {
    return null;
  }
  const hint = el('div', { class: 'aistudio-Datasets-hint', 'data-restart-hint': name });
  const button = el('button', { class: 'jp-Button jp-mod-accept' }, 'Restart your server');
  button.onclick = () => void restartServer(button);
  hint.append(el('span', {}, `Access granted. Restart your server to mount it at ${access.path}.`), button);
  return hint;
}
