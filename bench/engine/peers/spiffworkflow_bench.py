"""SpiffWorkflow on the three-task model: N instances, each run to completion in memory.

Service tasks are bound the SpiffWorkflow way (spiffworkflow:serviceTaskOperator) and run by a
script engine whose call_service is overridden to count calls. Prints one JSON line.
"""

import json
import sys
import time

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser


class CountingServices(PythonScriptEngine):
    def __init__(self):
        super().__init__()
        self.calls = {}

    def call_service(self, task, operation_name, operation_params):
        self.calls[operation_name] = self.calls.get(operation_name, 0) + 1
        return "{}"


def main():
    model, count = sys.argv[1], int(sys.argv[2])
    parser = SpiffBpmnParser()
    with open(model, "rb") as f:
        parser.add_bpmn_str(f.read())
    spec = parser.get_spec("three-tasks")
    services = CountingServices()
    completed = 0
    started = time.perf_counter()
    for _ in range(count):
        workflow = BpmnWorkflow(spec, script_engine=services)
        workflow.do_engine_steps()
        if workflow.is_completed():
            completed += 1
    elapsed = time.perf_counter() - started
    all_tasks = all(services.calls.get(op, 0) == count for op in ("op_t1", "op_t2", "op_t3"))
    print(json.dumps({
        "instances": count,
        "completed": completed,
        "task_calls": services.calls,
        "all_tasks_ran": all_tasks and completed == count,
        "seconds": elapsed,
        "pi_per_s": completed / elapsed,
    }))


if __name__ == "__main__":
    main()
