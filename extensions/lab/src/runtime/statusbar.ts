/**
 * The status-bar item: this server's time left ("3 h 12 min left"), hidden when the server
 * has no limit, in a warning style below the largest warning point. Its tooltip says when
 * the server stops and whether it may be extended.
 */
import { Widget } from '@lumino/widgets';
import { duration, hhmm, RuntimeModel } from './model';

export const STATUS_ID = 'aistudio-runtime-status';
const WARNING_CLASS = 'aistudio-Runtime-warning';

export class RuntimeStatus extends Widget {
  constructor(private readonly _model: RuntimeModel) {
    super();
    this.id = STATUS_ID;
    this.addClass('aistudio-Runtime');
    this.addClass('jp-StatusBar-TextItem');
    this.node.dataset.testid = 'aistudio-runtime';
    _model.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._model.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const left = this._model.left;
    const runtime = this._model.runtime;
    if (left === null || !runtime) {
      this.node.textContent = '';
      delete this.node.dataset.left;
      this.removeClass(WARNING_CLASS);
      return;
    }
    const text = left > 0 ? `${duration(left)} left` : 'stopping';
    if (this.node.textContent !== text) {
      this.node.textContent = text;
    }
    this.node.dataset.left = String(Math.max(0, Math.round(left)));
    this.toggleClass(WARNING_CLASS, this._model.warning);
    const parts = [runtime.profile, runtime.gpus, `stops at ${hhmm(this._model.endsAt!)}`].filter(Boolean);
    if (runtime.extend.by) {
      parts.push(`may be extended by ${runtime.extend.by_text}`);
    } else if (runtime.extend.refusal) {
      parts.push(runtime.extend.refusal);
    }
    this.node.title = `Run-time limit of this server: ${parts.join(' · ')}`;
  }
}
