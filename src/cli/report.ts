/**
 * `advml report`: the JSON of eval, transfer and sweep runs and the folders of
 * attack runs, turned into DIR/index.html (charts, tables, explanations; one
 * self-contained file) and DIR/*.png. Loads neither libtorch nor the addon
 * unless clean images must be read from a dataset.
 */
import { resolve } from 'node:path';
import { buildReport, readReportInputs } from '../report/index.js';
import { type Command, UsageError, numberOption, parseOptions, positiveInt } from './command.js';

/** The `advml report` command: reads every input first, then builds the report folder. */
export const report: Command = {
  name: 'report',
  help: `Usage: advml report [--eval FILE]... [--transfer FILE]... [--sweep FILE]... [--attack DIR]... --out DIR

Turns results into a report a person can look at: DIR/index.html (one
self-contained page: inline SVG charts, tables, an explanation of each figure)
and one PNG per chart (with its Vega-Lite spec as NAME.vl.json).

  accuracy against eps   from --eval: clean line, one line per method with its
                         95% band, label source in the legend, label leaking marked
  transfer heatmaps      from --transfer: source x target, per method and eps,
                         transfer rate and error rate
  capacity curves        from --sweep (study 'capacity'): clean and adversarial
                         accuracy and their ratio against rho, plain and adversarial
  activation bars        from --sweep (study 'activation')
  example grids          from --attack: clean, perturbation (magnified), adversarial,
                         with predictions

Inputs (each may be repeated; at least one is required):
  --eval FILE       JSON written by 'advml eval --json FILE'
  --transfer FILE   JSON { "cells": TransferCell[] } (see docs/reports.md)
  --sweep FILE      JSON SweepResult (see docs/reports.md)
  --attack DIR      output folder of 'advml attack' (DIR/summary.json and its PNGs)

Options:
  --out DIR         report folder (created)
  --title TEXT      page title (default 'advml report')
  --examples N      images per example grid (default 8)
  --data NAME       dataset for the clean images of --attack folders, e.g.
                    mnist:test (default: the 'data' each summary.json names)
  --scale N         PNG pixels per chart pixel (default 2)
  -h, --help        show this help`,
  async run(argv) {
    const { values: o } = parseOptions('report', argv, {
      eval: { type: 'string', multiple: true },
      transfer: { type: 'string', multiple: true },
      sweep: { type: 'string', multiple: true },
      attack: { type: 'string', multiple: true },
      out: { type: 'string' },
      title: { type: 'string' },
      examples: { type: 'string' },
      data: { type: 'string' },
      scale: { type: 'string' },
    });
    if (!o.out) throw new UsageError("advml report: --out is required (a folder for index.html and the PNGs); see 'advml report --help'");
    const paths = { evals: o.eval ?? [], transfers: o.transfer ?? [], sweeps: o.sweep ?? [], attacks: o.attack ?? [] };
    if (paths.evals.length + paths.transfers.length + paths.sweeps.length + paths.attacks.length === 0) {
      throw new UsageError("advml report: nothing to report: give at least one of --eval, --transfer, --sweep, --attack (see 'advml report --help')");
    }
    const examples = positiveInt('report', 'examples', o.examples, 8);
    const scale = o.scale === undefined ? 2 : numberOption('report', 'scale', o.scale, { greaterThan: 0, max: 8 });
    // A missing or malformed input throws a ReportInputError naming the file; main prints it (exit 1).
    const inputs = readReportInputs(paths);
    const out = await buildReport(inputs, o.out, { title: o.title, examples, data: o.data, pngScale: scale });
    console.log(`wrote ${out.html} and ${out.figures.length} chart${out.figures.length === 1 ? '' : 's'}:`);
    for (const f of out.figures) console.log(`  ${f.png}  ${f.title}`);
    console.log(`open file://${resolve(out.html)}`);
    return 0;
  },
};
