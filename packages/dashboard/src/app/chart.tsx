/** The overview's throughput chart: uPlot, fed with the live feed's per-second counts. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Bucket } from './live.ts';

function toData(buckets: Bucket[]): uPlot.AlignedData {
  return [buckets.map((b) => b.t), buckets.map((b) => b.records), buckets.map((b) => b.events)];
}

export function ThroughputChart({ buckets }: { buckets: Bucket[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: 220,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.15)] } },
      axes: [{ space: 90 }, { label: 'events/s', size: 56 }],
      series: [
        {},
        { label: 'record changes/s', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)', width: 2 },
        { label: 'domain events/s', stroke: '#d97706', width: 2 },
      ],
    };
    plot.current = new uPlot(opts, toData(buckets), el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(toData(buckets));
  });

  // What the chart shows, in numbers too (for a reader of the page's text, and for tests).
  const records = buckets.reduce((n, b) => n + b.records, 0);
  const events = buckets.reduce((n, b) => n + b.events, 0);
  return <div class="chart" ref={box} data-records={records} data-events={events} />;
}
