import { runSynth } from './lib/synth';
import { VergabeChart } from './lib/vergabe-chart';

// Every config/<environment>.yaml becomes dist/<environment>/: one file per deploy phase and a plan.
runSynth({
  configDir: 'config',
  outDir: 'dist',
  build: (app, environment) => new VergabeChart(app, environment.name, { environment }).output(),
});
