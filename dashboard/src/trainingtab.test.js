// The Training tab's charts (the gradient norm among them) and its way to TensorBoard.
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';
import { seriesData, tensorboardLine, tensorboardUrl, trainingTabHtml } from './trainingtab.js';

beforeEach(() => setVocabulary(structuredClone(served)));

const run = { id: 'run-1', model_type: 'retrieval' };
const history = [
  { epoch: 1, loss: 2.0, val_loss: 2.1, learning_rate: 0.1, grad_norm: 4.5, metrics: { recall_at_100: 0.1 } },
  { epoch: 2, loss: 1.5, val_loss: 1.7, learning_rate: 0.1, metrics: { recall_at_100: 0.2 } },
  { epoch: 3, loss: 1.2, val_loss: 1.4, learning_rate: 0.05, grad_norm: 1.25, metrics: { recall_at_100: 0.3 } },
];
const experiment = 'projects/123/locations/europe-west4/tensorboards/456/experiments/789';

describe('the training tab', () => {
  it('charts the gradient norm per epoch beside loss, validation loss, the gate metric and the learning rate', () => {
    const series = seriesData(run, history);
    expect(Object.keys(series)).toEqual(['loss', 'val_loss', 'gate', 'learning_rate', 'grad_norm']);
    expect(series.grad_norm[1]).toEqual([4.5, null, 1.25]);  // an epoch without a norm is a gap, not a zero
    expect(series.grad_norm[0]).toContain('Gradient norm');
    expect(series.gate[1]).toEqual([0.1, 0.2, 0.3]);
    const html = trainingTabHtml(run, 'Epoch 3 of 3');
    expect(html).toContain('data-chart="grad_norm"');
    expect(html).toContain('id="chart-loss"');
  });

  it("links the run's Vertex TensorBoard experiment the way the Vertex SDK builds its URL", () => {
    expect(tensorboardUrl(experiment)).toBe(
      'https://europe-west4.tensorboard.googleusercontent.com/experiment/projects+123+locations+europe-west4+tensorboards+456+experiments+789');
    expect(tensorboardUrl('projects/123/locations/europe-west4/tensorboards/456')).toBeNull();
    expect(tensorboardUrl('javascript:alert(1)')).toBeNull();
    const line = tensorboardLine({ ...run, tensorboard_experiment: experiment });
    expect(line).toContain('data-role="tensorboard-link"');
    expect(line).toContain(`href="${tensorboardUrl(experiment)}"`);
  });

  it('points a local run to the CLI that serves its event files', () => {
    const line = tensorboardLine(run);
    expect(line).toContain('trainyard runs tensorboard run-1');
    expect(line).not.toContain('href=');
    expect(line).not.toContain('tensorboard-skipped');
  });

  it("says why a GPU fallback's attempt in another region uploaded nothing, and where its event files are", () => {
    const why = "TensorBoard upload skipped: this attempt's Trainer runs in us-central1 (GPU fallback) <and> ...";
    const line = tensorboardLine({ ...run, tensorboard_upload_skipped: why });
    expect(line).toContain('data-role="tensorboard-skipped"');
    expect(line).toContain('runs in us-central1 (GPU fallback) &lt;and&gt;');
    expect(line).toContain('trainyard runs tensorboard run-1');
  });
});
