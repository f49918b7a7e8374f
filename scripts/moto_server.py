"""moto_server for the local cloud and the tests, with four fixes to moto 5.2.1.

1. moto's Step Functions interpreter deep-copies a state machine at every
   StartExecution, and the copy includes the machine's earlier executions,
   whose worker threads hold locks that cannot be copied. The first
   execution of a machine therefore runs and the second fails with "cannot
   pickle '_thread.RLock' object". The copy only freezes the machine's
   definition for the new execution, so it is made without the list.
2. moto's CloudFormation creates every AWS::ElasticLoadBalancingV2::
   LoadBalancer as an application load balancer, ignoring Type, so a
   network load balancer's TCP listener is refused. The fix passes Type on.
3. moto_server serves requests on several threads, and its DynamoDB
   backend checks a write's condition and applies the write without a
   lock, so two racing conditional writes can both succeed. DynamoDB
   applies each conditional write atomically; the node store relies on it.
   The fix serialises DynamoDB's writes.
4. moto's Step Functions interpreter sleeps for real between a Retry's
   attempts (IntervalSeconds times BackoffRate per attempt, with jitter),
   which is minutes for the workflow's persistent retriers. With
   LOCALCLOUD_MAX_RETRY_SECONDS set, each of those sleeps is capped at that
   many seconds, as the local cloud caps Wait states
   (MEDIASCALE_MAX_WAIT_SECONDS): the attempts and their order are AWS's,
   only the pauses between them are shorter.

Usage is moto_server's: python3 scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import copy
import functools
import os
import threading
import time
import types

from moto.dynamodb.models import DynamoDBBackend
from moto.elbv2.models import FakeLoadBalancer, elbv2_backends
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


def _load_balancer_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    return elbv2_backends[account_id][region_name].create_load_balancer(
        properties.get("Name", resource_name),
        properties.get("SecurityGroups"),
        properties.get("Subnets"),
        scheme=properties.get("Scheme", "internet-facing"),
        loadbalancer_type=properties.get("Type", "application"),
    )


FakeLoadBalancer.create_from_cloudformation_json = classmethod(_load_balancer_from_cloudformation)

_dynamodb_writes = threading.Lock()


def _atomic(write):
    @functools.wraps(write)
    def wrapper(*args, **kwargs):
        with _dynamodb_writes:
            return write(*args, **kwargs)

    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

_max_retry = os.environ.get("LOCALCLOUD_MAX_RETRY_SECONDS")
if _max_retry:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    _cap = float(_max_retry)
    retrier_decl.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(min(seconds, _cap)))

if __name__ == "__main__":
    main()
