// bpmn-engine on the three-task model: N instances, each run to completion in memory.
// Service tasks are bound the bpmn-engine way (implementation="${environment.services.tX}")
// to functions that count calls. The model is parsed once; each instance gets a new Engine
// over the parsed context, as the library recommends. Prints one JSON line.
import { readFileSync } from 'node:fs';
import { Engine } from 'bpmn-engine';
import * as elements from 'bpmn-elements';
import BpmnModdle from 'bpmn-moddle';
import serializer, { TypeResolver } from 'moddle-context-serializer';

const [model, countArg] = process.argv.slice(2);
const count = Number(countArg);
const source = readFileSync(model, 'utf8');
const sourceContext = serializer(await new BpmnModdle().fromXML(source), TypeResolver(elements));
const calls = { t1: 0, t2: 0, t3: 0 };
const service = (name) => (_context, callback) => {
  calls[name] += 1;
  callback(null, {});
};
const services = { t1: service('t1'), t2: service('t2'), t3: service('t3') };

function runOne() {
  const engine = new Engine({ name: 'three-tasks', sourceContext });
  return new Promise((resolve, reject) => {
    engine.once('end', () => resolve(true));
    engine.once('error', reject);
    engine.execute({ services });
  });
}

let completed = 0;
const started = process.hrtime.bigint();
for (let i = 0; i < count; i++) {
  if (await runOne()) completed += 1;
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({
  instances: count,
  completed,
  task_calls: calls,
  all_tasks_ran: completed === count && calls.t1 === count && calls.t2 === count && calls.t3 === count,
  seconds,
  pi_per_s: completed / seconds,
}));
