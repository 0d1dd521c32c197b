/**
 * AI Studio's JupyterLab extension: one plugin per feature.
 */
import { announcementsPlugin } from './announcements/plugin';
import { datasetsPlugin } from './datasets/plugin';
import { queuePlugin } from './queue/plugin';

export default [datasetsPlugin, announcementsPlugin, queuePlugin];
