/**
 * `npm run bench:charts`: redraws BENCHMARKS.md's tables and its SVG charts (bench/charts/) from
 * bench/results/latest.json, measuring nothing — after a change to the report or the charts.
 */
import { updateBenchmarksMd } from './lib/report';
import { loadLatest } from './lib/results';

updateBenchmarksMd(loadLatest());
process.stdout.write('BENCHMARKS.md and bench/charts/ redrawn from bench/results/latest.json\n');
