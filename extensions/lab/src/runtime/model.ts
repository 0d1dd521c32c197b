/**
 * This server's run time as the hub last told it (this server's
 * /aistudio-datasets/api/runtime, which asks the hub's run-time API with the server's
 * token), counted down locally between two asks: the status-bar item and the warnings
 * read it. The countdown uses the browser's monotonic clock from the moment of the
 * answer, so a browser clock set wrong changes nothing but the HH:MM shown.
 */
import { Signal } from '@lumino/signaling';
import { requestAPI } from '../request';

/** The route's plain fields (aistudio_lab/runtime.py). */
export interface IRuntime {
  server: string;
  profile: string;
  gpus: string;
  started: number | null;
  max_runtime: number | null;
  ends_at: number | null;
  left: number | null;
  warn_before: number[];
  extend: { by: number | null; by_text: string; refusal: string | null; done: number };
  stop_reason: string | null;
}

export class RuntimeModel {
  /** Emitted on every new answer and on every local tick. */
  readonly changed = new Signal<this, void>(this);

  private _runtime: IRuntime | null = null;
  private _at = 0; // performance.now() when the hub answered

  get runtime(): IRuntime | null {
    return this._runtime;
  }

  /** Seconds left now (null: no limit, or not known). */
  get left(): number | null {
    if (!this._runtime || this._runtime.left === null) {
      return null;
    }
    return this._runtime.left - (performance.now() - this._at) / 1000;
  }

  /** Whether the server has a run-time limit to show. */
  get limited(): boolean {
    return this.left !== null;
  }

  /** Below the largest warning point: the status-bar item turns to its warning style. */
  get warning(): boolean {
    const left = this.left;
    const points = this._runtime?.warn_before ?? [];
    return left !== null && points.length > 0 && left <= Math.max(...points);
  }

  /** When the server stops, in the browser's clock (epoch ms), or null. */
  get endsAt(): number | null {
    const left = this.left;
    return left === null ? null : Date.now() + left * 1000;
  }

  /** Ask the hub anew. */
  async refresh(): Promise<void> {
    this.update(await requestAPI<IRuntime>('runtime'));
  }

  /** Extend within the policy; throws with the hub's refusal. */
  async extend(): Promise<IRuntime> {
    const runtime = await requestAPI<IRuntime>('runtime/extend', { method: 'POST' });
    this.update(runtime);
    return runtime;
  }

  update(runtime: IRuntime): void {
    this._runtime = runtime;
    this._at = performance.now();
    this.changed.emit();
  }

  /** The local countdown's step. */
  tick(): void {
    if (this._runtime) {
      this.changed.emit();
    }
  }
}

/** "3 h 12 min", "12 min", "4 min 30 s", "45 s": rounded up, a stop is never sooner than said. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s >= 3600) {
    const minutes = Math.ceil(s / 60);
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  if (s >= 600) {
    return `${Math.ceil(s / 60)} min`;
  }
  if (s >= 60) {
    const m = Math.floor(s / 60);
    return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  }
  return `${s} s`;
}

/** HH:MM in the browser's time zone (the member's clock). */
export function hhmm(epochMs: number): string {
  const date = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
