// What an experiment's inherited configuration amounts to, in the words of the wizard (spec §4):
// the dataset's size, each feature's dimensions per tower side, the towers' layer shapes.

import { trainsTower } from './format.js';

const compact = (n) => {
  if (n == null) return null;
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}K`;
  return String(n);
};

export function datasetSize(dataset) {
  const s = dataset?.stats || {};
  const parts = [[s.rows, 'rows'], [s.users, 'users'], [s.items, 'products']]
    .filter(([n]) => n != null).map(([n, what]) => `${compact(n)} ${what}`);
  return parts.length ? parts.join(', ') : 'size not recorded';
}

// The width a feature adds to its tower's input (shared/domain/catalog.py's transforms).
export function featureWidth(transform) {
  switch (transform?.type) {
    case 'vocabulary': case 'hashing': case 'cross': return transform.embedding_dim ?? (transform.type === 'cross' ? 16 : 32);
    case 'bucketize': return transform.embedding_dim ?? transform.num_buckets ?? 10;
    case 'cyclical': return 2 * (transform.components?.length ?? 3); // sin and cos of each component
    case 'normalize': return 1;
    default: return null;
  }
}

export function featureDims(featureConfig) {
  const sides = { query: [], candidate: [] };
  for (const f of featureConfig?.features || []) (sides[f.side] ||= []).push(f);
  const side = (name) => {
    const features = sides[name] || [];
    const total = features.reduce((sum, f) => sum + (featureWidth(f.transform) || 0), 0);
    const list = features.map((f) => `${f.name}: ${featureWidth(f.transform) ?? '?'}d`).join(', ');
    return { total, list };
  };
  return { query: side('query'), candidate: side('candidate') };
}

export function featureDimsText(featureConfig) {
  if (!featureConfig?.features) return '';
  const d = featureDims(featureConfig);
  return `query ${d.query.total}d (${d.query.list}) · candidate ${d.candidate.total}d (${d.candidate.list})`;
}

export function towerShapes(modelConfig) {
  if (!modelConfig?.query_tower) return '';
  // [] (the default): the features' embeddings are the tower's output (catalog.py's TOWER_DOC).
  const arrow = (layers) => (layers?.length ? layers.join('→') : 'embedding-only');
  const parts = [`query ${arrow(modelConfig.query_tower)}`, `candidate ${arrow(modelConfig.candidate_tower)}`];
  if (trainsTower(modelConfig.model_type, 'ranking_head') && modelConfig.ranking_head?.length) parts.push(`ranking head ${arrow(modelConfig.ranking_head)}`);
  return `${parts.join(' · ')} towers, ${modelConfig.optimizer || 'adagrad'} optimizer`;
}

const created = (item) => [item.created_by, item.created_at ? String(item.created_at).slice(0, 10) : null].filter(Boolean).join(', ');
const sourceText = (s) => (s ? `${s.kind || ''} ${s.uri || s.table || (s.query ? 'a query' : '')}${s.format ? ` (${s.format})` : ''}`.trim() : '');

/** One line under a config's name in the change modal (spec §4.5: "user_id: 64d │ product_id: 64d │ …"). */
export function configSummary(kind, item) {
  if (kind === 'dataset') return datasetSize(item);
  if (kind === 'feature_config') return (item.features || []).map((f) => `${f.name}: ${featureWidth(f.transform) ?? '?'}d`).join(' │ ');
  if (kind === 'model_config') return towerShapes(item) || item.model_type || '';
  return item.description || '';
}

/** The highlighted config's fields for the modal's details pane: [[label, value]], empty values left out. */
export function configFields(kind, item) {
  const rows = {
    dataset: () => [['Size', datasetSize(item)], ['Source', sourceText(item.source)], ['Split', item.split_strategy],
      ['Sample', item.sample_percent != null ? `${item.sample_percent}%` : ''], ['Extra features', (item.features || []).join(', ')]],
    feature_config: () => {
      const d = featureDims(item);
      return [['Query side', d.query.list ? `${d.query.total}d: ${d.query.list}` : ''],
        ['Candidate side', d.candidate.list ? `${d.candidate.total}d: ${d.candidate.list}` : ''], ['Features', String((item.features || []).length)]];
    },
    model_config: () => [['Model type', item.model_type], ['Towers', towerShapes(item)], ['Optimizer', item.optimizer]],
  }[kind] || (() => []);
  return [['Id', item.id], ...rows(), ['Description', item.description], ['Created', created(item)]]
    .filter(([, v]) => v !== undefined && v !== null && v !== '');
}
