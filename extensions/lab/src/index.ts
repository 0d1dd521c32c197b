/**
 * AI Studio's JupyterLab extension: one plugin per feature.
 */
import { announcementsPlugin } from './announcements/plugin';
import { datasetsPlugin } from './datasets/plugin';

export default [datasetsPlugin, announcementsPlugin];
