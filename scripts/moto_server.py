"""moto_server for the local cloud, with one fix to moto 5.2.1.

moto's Step Functions interpreter deep-copies a state machine at every
StartExecution, and the copy includes the machine's earlier executions,
whose worker threads hold locks that cannot be copied. The first execution
of a machine therefore runs and the second fails with "cannot pickle
'_thread.RLock' object". The copy only freezes the machine's definition
for the new execution, so it is made without the execution list.

Usage is moto_server's: python3 scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import copy

from moto.server import main
from moto.stepfunctions.models import StateMachineInstance


def _deepcopy_without_executions(self, memo):
    cls = self.__class__
    clone = cls.__new__(cls)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


StateMachineInstance.__deepcopy__ = _deepcopy_without_executions

if __name__ == "__main__":
    main()
