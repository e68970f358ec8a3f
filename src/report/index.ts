/**
 * Reports: charts (Vega-Lite specs rendered headlessly to SVG and PNG), image
 * grids and a self-contained HTML page made from the JSON of `advml eval`,
 * transfer matrices, capacity and activation sweeps, and `advml attack`
 * output folders. See docs/reports.md.
 */
export * from './inputs.js';
export * from './attack-input.js';
export * from './raster.js';
export * from './charts.js';
export * from './render.js';
export * from './text-metrics.js';
export * from './html.js';
export * from './build.js';
