import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/service/metrics.js';

describe('the counts taken for every event', () => {
  it('count each pair of label values apart, however often the same pair comes', async () => {
    const metrics = createMetrics();
    for (let i = 0; i < 3; i++) metrics.countEvent('call.reject', 'applied');
    metrics.countEvent('call.reject', 'refused');
    metrics.countEvent('call.incoming', 'applied');
    metrics.countFinal('rejected');
    metrics.countFinal('rejected');
    metrics.observeRequest('202', 0.004);
    metrics.observeRequest('202', 0.006);
    metrics.observeRequest('429', 0.002);
    const text = await metrics.registry.metrics();
    expect(text).toContain('callgate_events_total{type="call.reject",delivery="applied"} 3\n');
    expect(text).toContain('callgate_events_total{type="call.reject",delivery="refused"} 1\n');
    expect(text).toContain('callgate_events_total{type="call.incoming",delivery="applied"} 1\n');
    expect(text).toContain('callgate_calls_total{state="rejected"} 2\n');
    expect(text).toContain('callgate_graph_request_seconds_count{status="202"} 2\n');
    expect(text).toContain('callgate_graph_request_seconds_count{status="429"} 1\n');
  });
});
