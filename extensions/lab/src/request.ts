/**
 * The one way the front end asks this server: its /aistudio-datasets/api/ handlers
 * (aistudio_lab/routes.py), which pass the requests on to the hub's services.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Ask this server's handlers; throws with the service's message. */
export async function requestAPI<T>(path: string, init: RequestInit = {}, query: Record<string, string> = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams(query).toString();
  const url = URLExt.join(settings.baseUrl, 'aistudio-datasets', 'api', path) + (params ? `?${params}` : '');
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new Error(data.message || `${response.status} ${response.statusText}`);
  }
  return data as T;
}
