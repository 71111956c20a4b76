/**
 * Plots a person can read — ROC curves, confusion matrix, training curves — as vega-lite specs,
 * rendered headless to SVG by vega and to PNG by sharp.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { RocCurve } from './metrics.ts';

async function renderPng(spec: TopLevelSpec): Promise<Buffer> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG(2);
  view.finalize();
  return sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).png().toBuffer();
}

/** One-vs-rest ROC curves, one line per class with its AUC in the legend, and the chance diagonal. */
export function rocPlot(curves: readonly RocCurve[], classes: readonly string[], title: string): Promise<Buffer> {
  const values = curves.flatMap((curve, c) =>
    curve.fpr.map((fpr, i) => ({ fpr, tpr: curve.tpr[i], order: i, cls: `${classes[c]} (AUC ${Number.isNaN(curve.auc) ? 'n/a' : curve.auc.toFixed(3)})` })),
  );
  return renderPng({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 420,
    height: 420,
    layer: [
      {
        data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
        mark: { type: 'line', strokeDash: [4, 4], color: '#999999' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: 'False positive rate', scale: { domain: [0, 1] } },
          y: { field: 'tpr', type: 'quantitative', title: 'True positive rate', scale: { domain: [0, 1] } },
          color: { field: 'cls', type: 'nominal', title: 'Class (one vs rest)' },
          order: { field: 'order', type: 'quantitative' },
        },
      },
    ],
  } as TopLevelSpec);
}

/** Confusion matrix heatmap with counts in the cells. */
export function confusionPlot(confusion: number[][], classes: readonly string[], title: string): Promise<Buffer> {
  const values = confusion.flatMap((row, t) => row.map((count, p) => ({ actual: classes[t], predicted: classes[p], count })));
  const max = Math.max(1, ...values.map((v) => v.count));
  return renderPng({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    width: 60 * classes.length,
    height: 60 * classes.length,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: [...classes], title: 'Predicted class' },
      y: { field: 'actual', type: 'nominal', sort: [...classes], title: 'True class' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'count', type: 'quantitative', title: 'Images', scale: { scheme: 'blues', domain: [0, max] } } } },
      {
        mark: { type: 'text', fontSize: 14 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  } as TopLevelSpec);
}

export interface CurvePoint {
  level: string;
  epoch: number;
  split: 'train' | 'validation';
  loss: number;
  accuracy: number;
}

/** Loss and accuracy per epoch, train and validation, one column per level. */
export function trainingCurvesPlot(points: readonly CurvePoint[], title: string): Promise<Buffer> {
  const values = points.flatMap((p) => [
    { level: p.level, epoch: p.epoch, split: p.split, metric: 'loss (NLL)', value: p.loss },
    { level: p.level, epoch: p.epoch, split: p.split, metric: 'accuracy', value: p.accuracy },
  ]);
  return renderPng({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal', title: null }, column: { field: 'level', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent', x: 'independent' } },
    spec: {
      width: 300,
      height: 180,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'Epoch', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'split', type: 'nominal', title: 'Split' },
      },
    },
  } as TopLevelSpec);
}
