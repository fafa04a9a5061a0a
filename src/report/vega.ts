// Every chart polytune writes (training curves, the grid table, MT-Bench radar and win rates) is a
// Vega-Lite spec rendered to SVG here, headless: no canvas, no browser, no network.
import * as vega from 'vega';
import * as vl from 'vega-lite';

export type VegaLiteSpec = vl.TopLevelSpec;

/** Renders a Vega-Lite spec to a standalone SVG document. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders a raw Vega spec (for charts Vega-Lite cannot express, such as radar plots). */
export async function renderVegaSvg(spec: vega.Spec): Promise<string> {
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
