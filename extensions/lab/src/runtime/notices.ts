/**
 * The run-time warnings: at each warning point of the hub (when the time left falls to a
 * `warn_before` value) a JupyterLab notification "Your server stops at 14:30, in 5 min:
 * save your work", with an "Extend by 1h" action when the policy allows it. Each point is
 * shown once per server lifetime (the server's name and start time key what was shown, in
 * localStorage, so a reload or a second tab does not show it again); an extension moves
 * the limit, and the points come due again before the new one, as the hub's e-mails do.
 */
import { Notification } from '@jupyterlab/apputils';
import { duration, hhmm, RuntimeModel } from './model';

const WARNED_KEY = 'aistudio-runtime:warned';
const KEEP_MS = 7 * 24 * 3600 * 1000; // lifetimes older than this are forgotten

/** {"server@started": {"at": epoch ms, "points": ["max_runtime:point", ...]}} */
type Warned = Record<string, { at: number; points: string[] }>;

function loadWarned(): Warned {
  try {
    const warned = JSON.parse(window.localStorage.getItem(WARNED_KEY) || '{}');
    return warned && typeof warned === 'object' && !Array.isArray(warned) ? warned : {};
  } catch {
    return {};
  }
}

function saveWarned(warned: Warned): void {
  const now = Date.now();
  for (const [key, entry] of Object.entries(warned)) {
    if (!entry || typeof entry.at !== 'number' || now - entry.at > KEEP_MS) {
      delete warned[key];
    }
  }
  window.localStorage.setItem(WARNED_KEY, JSON.stringify(warned));
}

export class RuntimeNotices {
  constructor(private readonly _model: RuntimeModel) {
    _model.changed.connect(this._check, this);
  }

  /** Show the warning due now, if any (on every answer and every tick of the model). */
  private _check(): void {
    const runtime = this._model.runtime;
    const left = this._model.left;
    if (!runtime || left === null || runtime.started === null || left <= 0) {
      return;
    }
    const reached = runtime.warn_before.filter(point => left <= point);
    if (!reached.length) {
      return;
    }
    const key = `${runtime.server}@${runtime.started}`;
    const warned = loadWarned();
    const entry = warned[key] && Array.isArray(warned[key].points) ? warned[key] : { at: Date.now(), points: [] };
    const due = reached.filter(point => !entry.points.includes(`${runtime.max_runtime}:${point}`));
    if (!due.length) {
      return;
    }
    // only the nearest point is worth a notice when several are reached at once (as the hub's e-mails)
    entry.points.push(...due.map(point => `${runtime.max_runtime}:${point}`));
    warned[key] = entry;
    saveWarned(warned);
    this._warn();
  }

  private _warn(): void {
    const runtime = this._model.runtime!;
    const left = this._model.left ?? 0;
    const name = runtime.server ? `Your server "${runtime.server}"` : 'Your server';
    const message = `${name} stops at ${hhmm(this._model.endsAt!)}, in ${duration(left)}: save your work`;
    const actions: Notification.IAction[] = [];
    if (runtime.extend.by) {
      actions.push({
        label: `Extend by ${runtime.extend.by_text}`,
        caption: 'Extend this server within your quota',
        displayType: 'accent',
        callback: () => void this.extend()
      });
    }
    Notification.warning(message, { autoClose: false, actions });
  }

  /** The action: extend, then say the new stop or the hub's refusal. */
  async extend(): Promise<void> {
    const by = this._model.runtime?.extend.by_text; // the answer tells the next extension's, if any
    try {
      await this._model.extend();
      const left = this._model.left ?? 0;
      Notification.success(
        `Extended${by ? ` by ${by}` : ''}: your server now stops at ${hhmm(
          this._model.endsAt ?? Date.now()
        )}, in ${duration(left)}`,
        { autoClose: 10_000 }
      );
    } catch (error) {
      Notification.error(`Your server was not extended: ${(error as Error).message}`, { autoClose: false });
    }
  }
}
