// The endpoint view's pure parts: the list followed across pages, the traffic form and the body it posts (shares
// that must add up to 100), when an undeploy needs force, the history, the wizard's picker, and the card's button.
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));
const {
  endpointIdOf, endpointPicker, historyRows, lastWithTraffic, listEndpoints, mayChange, renderEndpoint, renderEndpointList,
  trafficBody, trafficForm,
} = await import('./endpointview.js');
const { renderCard } = await import('./cards.js');

const endpoint = {
  id: 'recs-prod', display_name: 'recs prod', resource_name: 'projects/p/locations/l/endpoints/recs-prod', teams: ['recs'],
  traffic_split: { 11: 80, 12: 20 }, canary: null, under_way: [],
  deployed_models: [
    { id: '11', display_name: 'recs-v2-v2', model_version_id: '2', traffic_percent: 80,
      run: { id: 'tr-a', name: 'recs-v2', model_version: '2', deployment_status: 'deployed' } },
    { id: '12', display_name: 'recs-v3-v3', model_version_id: '3', traffic_percent: 20,
      run: { id: 'tr-b', name: 'recs-v3', model_version: '3', deployment_status: 'deployed' } }],
  history: [
    { at: '2026-12-06T20:00:00Z', action: 'deployed', by: 'ann@x.com', run_id: 'tr-a', run_name: 'recs-v2', from: {}, to: { 11: 100 }, reason: null },
    { at: '2026-12-06T21:00:00Z', action: 'traffic_changed', by: 'dan@x.com', run_id: 'tr-b', run_name: 'recs-v3',
      from: { 11: 100, 12: 0 }, to: { 11: 80, 12: 20 }, reason: 'A/B' }],
};

describe('the endpoint view', () => {
  it('lists every endpoint, following the signed page token', async () => {
    const asked = [];
    const pages = { '': { endpoints: [{ id: 'a' }], next_page_token: 'T1' }, T1: { endpoints: [{ id: 'b' }], next_page_token: null } };
    const found = await listEndpoints(async (path) => { asked.push(path); return pages[new URL(path, 'http://x').searchParams.get('page_token') || '']; });
    expect(found.map((e) => e.id)).toEqual(['a', 'b']);
    expect(asked[1]).toContain('page_token=T1');
  });
  it('starts the traffic form from the split and sends it only when it adds up to 100', () => {
    const form = trafficForm(endpoint);
    expect(form).toEqual({ 11: 80, 12: 20 });
    expect(trafficBody({ ...form, 12: 30 })).toEqual({ error: 'the shares add up to 110%, not 100%' });
    expect(trafficBody({ 11: 50.5, 12: 49.5 }).error).toBe('11: a whole percent from 0 to 100');
    expect(trafficBody({ 11: '60', 12: '40' }, ' A/B ')).toEqual({ body: { traffic_split: { 11: 60, 12: 40 }, reason: 'A/B' } });
    expect(trafficBody({ 11: 100, 12: 0 })).toEqual({ body: { traffic_split: { 11: 100, 12: 0 } } });
  });
  it('asks for force only for the last model that holds traffic', () => {
    expect(lastWithTraffic(endpoint, '12')).toBe(false);
    const alone = { deployed_models: [{ id: '11', traffic_percent: 100 }, { id: '12', traffic_percent: 0 }] };
    expect(lastWithTraffic(alone, '11')).toBe(true);
    expect(lastWithTraffic(alone, '12')).toBe(false);
  });
  it('shows the models, the run each came from, sliders summing to 100, roll back, and the history newest first', () => {
    const html = renderEndpoint(endpoint, trafficForm(endpoint), { roles: { recs: 'deployer' } });
    expect(html).toContain('recs-v3 <span class="muted small">v3 · tr-b</span>');
    expect(html.match(/data-share="11"/g)).toHaveLength(2); // a slider and a number for each model
    expect(html).toContain('data-undeploy="12"');
    expect(html).toContain('data-rollback="tr-b"');
    expect(html).toContain('Total: 100%');
    expect(html).not.toContain('data-traffic-apply disabled');
    expect(renderEndpoint(endpoint, { 11: 50, 12: 20 }, { roles: { recs: 'deployer' } })).toContain('data-traffic-apply disabled');
    expect(historyRows(endpoint)[0]).toEqual({ at: '2026-12-06T21:00:00Z', action: 'Traffic changed', by: 'dan@x.com',
      run: 'recs-v3', change: '11 100% → 11 80%, 12 20%', reason: 'A/B' });
    const viewer = renderEndpoint(endpoint, trafficForm(endpoint), { roles: { recs: 'viewer' } });
    expect(viewer).not.toContain('data-share');
    expect(viewer).not.toContain('data-undeploy');
    expect(mayChange({ roles: { ads: 'admin' } }, endpoint)).toBe(false);
  });
  it("shows another team's model on a shared endpoint as such: no run, no buttons, its share fixed", () => {
    const shared = { ...endpoint, teams: ['ads', 'recs'],
      canary: { of_another_team: true, percent: 10, status: 'watching', deployed_model_id: '13' },
      deployed_models: [...endpoint.deployed_models.slice(0, 1),
        { id: '13', display_name: 'ads-v1-v1', model_version_id: '1', traffic_percent: 20, run: { of_another_team: true } }],
      history: [{ at: '2026-12-06T22:00:00Z', action: 'deployed', endpoint: 'e', deployed_model_id: '13', from: {},
        to: { 13: 20 }, of_another_team: true }] };
    const html = renderEndpoint(shared, trafficForm(shared), { roles: { recs: 'deployer' } });
    const row = html.slice(html.indexOf('data-model="13"'), html.indexOf('</tr>', html.indexOf('data-model="13"')));
    expect(row).toContain('a model of another team');
    expect(row).toContain("its team's to change");
    expect(row).not.toMatch(/data-share|data-undeploy|data-rollback|undefined/);
    expect(html).toContain('data-undeploy="11"'); // the caller's own model keeps its buttons
    expect(html).toContain('Canary: a model of another team at 10%');
    expect(historyRows(shared)[0]).toMatchObject({ by: '—', run: 'a model of another team', change: '— → 13 20%' });
    expect(trafficBody(trafficForm(shared)).body.traffic_split).toEqual({ 11: 80, 13: 20 }); // sent unchanged
  });
  it("lists endpoints with a Manage button, and the wizard picks one (or types the id when there are none)", () => {
    expect(renderEndpointList([endpoint])).toContain('data-manage-endpoint="recs-prod"');
    expect(renderEndpointList([])).toContain('No endpoints yet');
    const picker = endpointPicker([endpoint], 'recs-prod', 'deployment.existing_endpoint_id');
    expect(picker).toContain('<input type="text" data-bind="deployment.existing_endpoint_id" value="recs-prod" placeholder="pick or type an endpoint id" data-role="endpoint-picker" list="endpoint-choices" />');
    expect(picker).toContain('<option value="recs-prod">recs prod: recs-v2 80%, recs-v3 20%</option>');
    const typed = endpointPicker([], 'typed', 'deployment.existing_endpoint_id');
    expect(typed).toContain('value="typed" placeholder="endpoint id"');
    expect(typed).not.toContain('datalist');
  });
  it("puts Manage Endpoint on a deployed card, for the endpoint it is on", () => {
    const run = { id: 'tr-b', name: 'recs-v3', status: 'completed', deployment_status: 'deployed',
      deployment: { status: 'deployed', endpoint_resource_name: 'projects/p/locations/l/endpoints/recs-prod' } };
    expect(endpointIdOf(run)).toBe('recs-prod');
    expect(renderCard(run)).toContain('<button data-action="manage-endpoint" data-run="tr-b">Manage Endpoint</button>');
    expect(renderCard({ ...run, deployment: { status: 'deploying' }, deployment_status: 'deploying' })).not.toContain('manage-endpoint');
  });
});
