/**
 * AI Studio's JupyterLab extension: one plugin per feature.
 */
import { announcementsPlugin } from './announcements/plugin';
import { datasetsPlugin } from './datasets/plugin';
import { queuePlugin } from './queue/plugin';
import { runtimePlugin } from './runtime/plugin';

export default [datasetsPlugin, announcementsPlugin, queuePlugin, runtimePlugin];
